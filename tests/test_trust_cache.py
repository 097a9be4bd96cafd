"""No answer rests on a copy the store has not confirmed (issue 10, items 1 and 2).

Two engines on one store stand for two processes: each has its own cache, exactly as two workers do. Engine A
fills a limit, so its cache holds the full meter; engine B then makes room. A's next answer must see B's change,
though A's denial writes nothing that a commit could check. Then many threads of one engine share its cache on
one customer, in workloads whose every answer is the same in any serial order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from limitr_py import Limitr, ManualClock
from tests.engine_helpers import START, Engines

DOC: dict[str, Any] = {
    "policy": {
        "credits": {"unit": {}, "tok": {"price": {"amount": 0.01}}},
        "plans": {
            "free": {
                "default": True,
                "entitlements": {
                    "api": {"limit": {"credit": "unit", "value": 10}},
                    "chat": {"limit": {"credit": "tok", "value": 10}},
                    "flag": {},
                },
                "topups": {"pack": {"credit": "tok", "value": 50}},
            },
            "pro": {
                "entitlements": {
                    "api": {"limit": {"credit": "unit", "value": 100}},
                    "chat": {"limit": {"credit": "tok", "value": 10}},
                    "flag": {},
                }
            },
        },
    }
}


@pytest.fixture
def pair(engines: Engines) -> tuple[Limitr, Limitr]:
    """Two engines (two caches) on one namespace of the backend's store, on one manual clock."""
    url = engines.url()
    clock = ManualClock(START)
    a = engines.adopt(Limitr.new(DOC, store=url, clock=clock))
    # a memory store lives in one process: the second engine shares it (the other stores open it again)
    b = (
        Limitr.new(DOC, store=a.store, clock=clock)
        if url == "memory://"
        else engines.adopt(Limitr.new(DOC, store=url, clock=clock))
    )
    return a, b


def _filled(a: Limitr, b: Limitr, entitlement: str = "api") -> None:
    b.create_customer("u", plan="free")
    assert a.allow("u", entitlement, 10, event=False)
    assert not a.allow("u", entitlement, 1, event=False)  # A's cache now holds the full meter


def test_room_freed_by_another_engine_is_seen_by_the_next_denial(pair: tuple[Limitr, Limitr]) -> None:
    a, b = pair
    _filled(a, b)
    assert b.allow("u", "api", -5, event=False)
    assert a.allow("u", "api", 5, event=False)  # 10 - 5 + 5 = 10: exactly at the limit
    assert not a.allow("u", "api", 1, event=False)


def test_a_grant_made_elsewhere_unblocks(pair: tuple[Limitr, Limitr]) -> None:
    a, b = pair
    _filled(a, b, "chat")
    assert b.grant("u", "tok", 5) is not None
    assert a.allow("u", "chat", 5, event=False)  # the grant covers 5 past the hard limit


def test_a_topup_bought_elsewhere_unblocks(pair: tuple[Limitr, Limitr]) -> None:
    a, b = pair
    _filled(a, b, "chat")
    assert b.apply_customer_topup("u", "pack")
    assert a.allow("u", "chat", 50, event=False)


def test_an_upgrade_made_elsewhere_unblocks(pair: tuple[Limitr, Limitr]) -> None:
    a, b = pair
    _filled(a, b)
    assert b.set_customer_plan("u", "pro")
    assert a.allow("u", "api", 50, event=False)  # pro: 100 units


def test_a_customer_deleted_elsewhere_is_not_served_from_the_cache(pair: tuple[Limitr, Limitr]) -> None:
    a, b = pair
    b.create_customer("u", plan="pro")
    assert a.allow("u", "flag", event=False)  # a feature flag writes nothing: A answers from what it read
    assert b.delete_customer("u")
    assert not a.allow("u", "flag", event=False)  # unknown customer: no plan applies
    assert a.customer("u") is None


def test_a_hold_released_elsewhere_frees_its_room(pair: tuple[Limitr, Limitr]) -> None:
    a, b = pair
    b.create_customer("u", plan="free")
    hold = a.reserve("u", "api", 10)
    assert hold is not None and a.reserve("u", "api", 1) is None
    assert b.release("u", "api", hold)
    assert a.reserve("u", "api", 10) is not None


# -- many threads of one engine on one customer ---------------------------------------------------------------

THREADS, ROUNDS = 8, 15


def _race(engine: Limitr, work: Callable[[Limitr], list[bool]]) -> list[bool]:
    answers: list[list[bool]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> None:
        try:
            barrier.wait()
            answers[i] = work(engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return [a for per_thread in answers for a in per_thread]


def _engine(pair: tuple[Limitr, Limitr], plan: str) -> Limitr:
    a, _ = pair
    a.create_customer("u", plan=plan)
    return a


def test_threads_taking_and_giving_back_one_unit_are_always_allowed(pair: tuple[Limitr, Limitr]) -> None:
    # a limit of 10 and 8 threads that each hold at most one unit at a time: in every serial order each +1 finds
    # room (at most 7 others outstanding) and each -1 is allowed, so every answer is True
    engine = _engine(pair, "free")

    def work(e: Limitr) -> list[bool]:
        out = []
        for _ in range(ROUNDS):
            out.append(e.allow("u", "api", 1, event=False))
            out.append(e.check("u", "api", 1))
            out.append(e.allow("u", "api", -1, event=False))
        return out

    answers = _race(engine, work)
    assert answers == [True] * len(answers)
    assert engine.value("u", "api") == 0


def test_a_hold_a_thread_just_reserved_is_released_by_it(pair: tuple[Limitr, Limitr]) -> None:
    # pro's 100 units hold every thread's one-unit hold at once: every reserve succeeds, every release finds its
    # own hold, and nothing stays held
    engine = _engine(pair, "pro")

    def work(e: Limitr) -> list[bool]:
        out = []
        for _ in range(ROUNDS):
            hold = e.reserve("u", "api", 1)
            out.append(hold is not None)
            out.append(hold is not None and e.release("u", "api", hold))
        return out

    answers = _race(engine, work)
    assert answers == [True] * len(answers)
    assert engine.held("u", "api") == 0


def test_reserve_then_settle_under_threads_meters_exactly_what_was_settled(pair: tuple[Limitr, Limitr]) -> None:
    engine = _engine(pair, "pro")

    def work(e: Limitr) -> list[bool]:
        out = []
        for _ in range(5):
            hold = e.reserve("u", "api", 2)
            out.append(hold is not None and e.settle("u", "api", hold, 1, event=False))
        return out

    answers = _race(engine, work)
    assert answers == [True] * len(answers)
    assert engine.value("u", "api") == THREADS * 5  # one unit settled per hold
    assert engine.held("u", "api") == 0
