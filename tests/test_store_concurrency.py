"""Atomicity under real concurrency on every store: 8 processes × 4 threads (memory: 32 threads in one process).

Each scenario has an exact answer worked out from the limits: whatever the interleaving, exactly L units are
allowed, and no cap ever ends above its ceiling.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from limitr_py import Limitr
from tests import backends
from tests.engine_helpers import Engines

PROCESSES, THREADS = 8, 4
DOC: dict[str, Any] = {
    "policy": {
        "credits": {"unit": {}, "usd_unit": {"price": {"amount": 1}}},
        "plans": {
            "main": {
                "default": True,
                "entitlements": {
                    "api": {"limit": {"credit": "unit", "value": 200}},
                    "gpu": {"limit": {"credit": "usd_unit", "value": 10**6, "mode": "soft"}},
                },
            }
        },
    }
}


def _threads(engine: Limitr, work: Callable[[Limitr, int], int]) -> int:
    counts = [0] * THREADS
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> None:
        barrier.wait()
        counts[i] = work(engine, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)


def hammer(engine: Limitr, i: int) -> int:
    return sum(engine.allow("u", "api", 1, event=False) for _ in range(10))


def org_spend(engine: Limitr, i: int) -> int:
    user = f"user{i % 8}"
    return sum(engine.allow(user, "gpu", 1, event=False) for _ in range(5))


def reserve_settle(engine: Limitr, i: int) -> int:
    done = 0
    for _ in range(10):
        hold = engine.reserve("u", "api", 1)
        if hold is not None:
            assert engine.settle("u", "api", hold, 1, event=False)
            done += 1
    return done


WORK = {"hammer": hammer, "org_spend": org_spend, "reserve_settle": reserve_settle}


def _worker(url: str, scenario: str, results: Any) -> None:
    engine = Limitr.new(DOC, store=url)
    try:
        results.put(_threads(engine, WORK[scenario]))
    finally:
        engine.store.close()


def run_everywhere(backend: str, url: str, scenario: str) -> int:
    """Total allowed across 8 processes × 4 threads (32 threads in one process for the memory store)."""
    if backend == "memory":
        engine = Limitr.new(DOC, store=url)
        setup(engine, scenario)
        before = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            return sum(_threads(engine, WORK[scenario]) for _ in range(PROCESSES))  # type: ignore[func-returns-value]
        finally:
            sys.setswitchinterval(before)
    with Limitr.new(DOC, store=url) as engine:
        setup(engine, scenario)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, scenario, results)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    total = sum(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return total


def setup(engine: Limitr, scenario: str) -> None:
    if scenario == "org_spend":
        engine.create_customer("org", type="org")
        for i in range(8):
            engine.create_customer(f"user{i}", refs=["org"])
        engine.add_customer_cap("org", 100, cap_id="org_budget", shared=True)
    else:
        engine.create_customer("u")


@pytest.fixture
def store_url(engines: Engines) -> str:
    return engines.url()


def test_a_hard_limit_of_200_allows_exactly_200(backend: str, store_url: str) -> None:
    # 320 attempts of 1 unit against a limit of 200
    assert run_everywhere(backend, store_url, "hammer") == 200
    if backend != "memory":
        with Limitr.new(DOC, store=store_url) as engine:
            assert engine.value("u", "api") == 200


def test_a_shared_org_cap_reached_from_eight_users_never_passes_its_ceiling(backend: str, store_url: str) -> None:
    # 160 calls of $1 against a shared $100 cap on the org
    assert run_everywhere(backend, store_url, "org_spend") == 100
    if backend != "memory":
        with Limitr.new(DOC, store=store_url) as engine:
            cap = engine.customer_cap("org", "org_budget")
            assert cap is not None and cap.meter_value == 100
            assert sum(engine.value(f"user{i}", "gpu") or 0 for i in range(8)) == 100


def test_reserve_then_settle_racing_never_exceeds_the_limit(backend: str, store_url: str) -> None:
    assert run_everywhere(backend, store_url, "reserve_settle") == 200
    if backend != "memory":
        with Limitr.new(DOC, store=store_url) as engine:
            assert engine.value("u", "api") == 200 and engine.held("u", "api") == 0


@pytest.mark.usefixtures("redis_cluster")
def test_cluster_keeps_a_group_in_one_slot_and_spreads_groups_over_the_masters(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    backends.check_service("redis")
    url = backends.cluster_url(tmp_path_factory.mktemp("cluster"))
    with Limitr.new(DOC, store=url) as engine:
        inner: Any = engine.store.inner  # type: ignore[attr-defined]
        for i in range(30):
            engine.create_customer(f"solo{i}")
        nodes = {inner.client.get_node_from_key(inner._key(f"customer:solo{i}", f"solo{i}")).port for i in range(30)}
        assert nodes == set(backends.CLUSTER_PORTS)  # 30 groups over 3 masters
        engine.create_customer("acme", type="org")
        engine.create_customer("ann", refs=["acme"], alt_ids=["ann@acme.com"])
        engine.add_entity("acme", "workspace")
        slots = {inner.client.keyslot(inner._key(f"customer:{c}", "acme")) for c in ("acme", "ann", "workspace")}
        assert len(slots) == 1  # the org, its user and its entity: every call on them stays in one slot
        engine.add_customer_cap("acme", 3, cap_id="shared", shared=True)
        assert engine.allow("ann@acme.com", "gpu", 2) and not engine.allow("ann", "gpu", 2)
        with pytest.raises(Exception, match="group"):
            engine.create_customer("mixed", refs=["acme", "solo1"])
        inner.flush()
