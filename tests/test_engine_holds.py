"""Reservations, estimates, plan fees and margins (reference/limitr.md §1.1, §2.11, §3.7, §3.9)."""

from __future__ import annotations

import sys
import threading
from datetime import timedelta
from decimal import Decimal as D

import pytest

from limitr_py import IdempotencyConflictError, InvalidArgumentError
from tests.engine_helpers import Engines, Recorder, limit

CREDITS = {"tok": {"price": {"amount": 0.01}, "overhead_cost": 0.002}, "fee": {"price": {"amount": 29}}}
ENTS = {
    "api": limit(10, "tok"),
    "chat": limit(100, "tok", mode="soft"),
    "llm": {"estimate_basis": "input", "estimate_segment": "model", **limit(10**6, "tok", mode="soft")},
    "daily": limit(5, "tok", mode="soft", resets=True, reset_inc="1day"),
}


def make(engines: Engines) -> tuple[object, object]:
    return engines.policy(ENTS, credits=CREDITS)


def test_a_hold_counts_against_the_limit_until_settled_and_settles_once(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    hold = e.reserve("u", "api", 6)
    assert hold is not None and hold.startswith("hold_") and e.held("u", "api") == 6
    assert not e.check("u", "api", 5) and e.check("u", "api", 4)
    assert e.allow("u", "api", 4)
    assert e.reserve("u", "api", 1) is None  # 4 posted + 6 held + 1 > 10
    assert e.value("u", "api") == 4  # holds are never metered
    assert e.settle("u", "api", hold, 3)
    assert e.value("u", "api") == 7 and e.held("u", "api") == 0
    assert not e.settle("u", "api", hold, 3)  # the second settle of the same hold records nothing
    assert e.value("u", "api") == 7


def test_settle_records_past_a_hard_limit_because_the_work_already_happened(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    hold = e.reserve("u", "api", 2)
    assert hold is not None
    assert e.settle("u", "api", hold, 15)
    assert e.value("u", "api") == 15
    assert e.settle("u", "api", "hold_never_made", 1)  # an unknown (or expired) hold still records usage
    assert e.value("u", "api") == 16


def test_release_and_expiry_free_the_room(engines: Engines) -> None:
    e, clock = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    hold = e.reserve("u", "api", 8)
    assert hold is not None and e.release("u", "api", hold) and not e.release("u", "api", hold)
    assert e.held("u", "api") == 0
    assert e.reserve("u", "api", 8, ttl="1min") is not None
    assert not e.check("u", "api", 3)
    clock.advance(seconds=61)
    assert e.held("u", "api") == 0 and e.check("u", "api", 10)
    with pytest.raises(InvalidArgumentError):
        e.reserve("u", "api", 1, ttl=timedelta(seconds=-1))


def test_reserve_without_value_holds_the_standard_increment_then_the_learned_estimate(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    first = e.reserve("u", "chat")
    assert first is not None and e.held("u", "chat") == 1
    e.release("u", "chat", first)
    for value in (10, 20, 30):
        assert e.observe("u", "chat", value)
    # w = max(0.1, 1/n): mean 10 → 15 → 20; variance 0 → 25 → (2/3)(25 + 15·(1/3)·15) = 66.67
    median = e.estimate("u", "chat", quantile="0.5")
    assert median is not None and median.value == 20 and median.samples == 3 and median.scope == "policy"
    high = e.estimate("u", "chat")
    spread = D("66.6667").sqrt()
    assert high is not None and D(20) + D("1.2810") * spread < high.value < D(20) + D("1.2820") * spread
    hold = e.reserve("u", "chat", quantile="0.5")
    assert hold is not None and e.held("u", "chat") == 20
    for value in (40, 40):
        e.observe("u", "chat", value)
    own = e.estimate("u", "chat", quantile="0.5")
    assert own is not None and own.scope == "customer" and own.samples == 5  # estimate_min_samples reached
    e.create_customer("v")
    other = e.estimate("v", "chat", quantile="0.5")
    assert other is not None and other.scope == "policy" and other.samples == 5


def test_per_basis_estimates_scale_with_the_basis_and_segment_by_context(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    context = {"input": 100, "model": "claude-sonnet-4.5"}
    assert e.observe("u", "llm", 250, context=context)  # 2.5 per input unit
    assert not e.observe("u", "llm", 250, context={"model": "x"})  # no basis: nothing learned
    guess = e.estimate("u", "llm", context={"input": 200, "model": "claude-sonnet-4.5"}, quantile="0.5")
    assert guess is not None and guess.value == 500
    assert e.estimate("u", "llm", context={"model": "claude-sonnet-4.5"}) is None
    assert e.estimate("u", "llm", basis=200, segment="other-model") is None
    state = e.customer_state("u")
    assert state is not None and "claude-sonnet-4_5" in state.meters["llm"].estimates


def test_settle_learns_from_the_actual_usage(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    hold = e.reserve("u", "chat", 5)
    assert hold is not None
    assert e.settle("u", "chat", hold, 42)
    learned = e.estimate("u", "chat", quantile="0.5")
    assert learned is not None and learned.value == 42 and learned.samples == 1


def test_settle_with_an_idempotency_key_applies_once(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    hold = e.reserve("u", "chat", 5)
    assert hold is not None
    assert e.settle("u", "chat", hold, 7, idempotency_key="s1") and e.settle("u", "chat", hold, 7, idempotency_key="s1")
    assert e.value("u", "chat") == 7
    with pytest.raises(IdempotencyConflictError):
        e.settle("u", "chat", hold, 8, idempotency_key="s1")


def test_holds_racing_from_threads_never_exceed_the_limit(engines: Engines) -> None:
    e, _ = engines.policy({"gpu": limit(100)})
    e.create_customer("u")
    got: list[str | None] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def worker() -> None:
        barrier.wait()
        mine = [e.reserve("u", "gpu", 1) for _ in range(30)]
        with lock:
            got.extend(mine)

    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    assert sum(h is not None for h in got) == 100 and e.held("u", "gpu") == 100
    assert len({h for h in got if h}) == 100


def test_plan_fee_is_charged_once_after_the_trial(engines: Engines) -> None:
    ents = {"subscription": limit(0, "fee", mode="soft"), "api": limit(10, "tok")}
    e, clock = engines.policy({}, credits=CREDITS, plans={"pro": {"trial_period": "14days", "entitlements": ents}})
    e.create_customer("u", plan="pro")
    rec = Recorder(e)
    assert not e.ensure_plan_subscription("u")  # still in the trial
    clock.advance(days=14)
    assert e.ensure_plan_subscription("u")
    assert rec.events[0].name == "meter-overage" and rec.events[0].payload["overage_price"] == 29
    assert not e.ensure_plan_subscription("u") and e.value("u", "subscription") == 1


def test_margins_from_overage_revenue_and_recorded_cost(engines: Engines) -> None:
    e, _ = engines.policy(ENTS, credits=CREDITS)
    e.create_customer("u")
    e.allow("u", "chat", 150)  # revenue 50 × 0.01 = 0.5; cost 150 × 0.002 = 0.3
    breakdown = e.customer_local_margin_breakdown("u")
    assert breakdown is not None
    assert breakdown["entitlements"]["chat"] == {"cost": D("0.3"), "revenue": D("0.5"), "margin": D("40.00")}
    assert breakdown["entitlements"]["api"]["margin"] is None
    assert (breakdown["revenue"], breakdown["cost"], breakdown["margin"]) == (D("0.5"), D("0.3"), D("40.00"))
    plan = e.local_margin_breakdown("main", {"chat": 300})  # 200 × 0.01 = 2 against 300 × 0.002 = 0.6
    assert plan is not None and plan["margin"] == D("70.00")
    # a daily limit in a monthly plan scales × 30: meter 300, limit 150 → revenue 1.5, cost 0.6
    scaled = e.local_margin_breakdown("main", {"daily": 10})
    assert scaled is not None and scaled["revenue"] == D("1.5") and scaled["margin"] == D("60.00")
    unscaled = e.local_margin_breakdown("main", {"daily": {"meter": 10, "overhead": "0.01"}}, scaled=False)
    assert unscaled is not None and unscaled["revenue"] == D("0.05") and unscaled["margin"] == D("80.00")
    empty = e.local_margin_breakdown("main", {"api": 5})
    assert empty is not None and empty["margin"] == -100


def test_settled_hold_records_expire_so_state_does_not_grow(engines: Engines) -> None:
    e, clock = engines.policy({"gpu": limit(10**6)})
    e.create_customer("u")
    for _ in range(50):
        hold = e.reserve("u", "gpu", 1)
        assert hold is not None and e.settle("u", "gpu", hold, 1)
    assert len(list(e.store.scan("settled:"))) == 50
    clock.advance(days=8)  # past each hold's expiry plus the week its settle is remembered
    hold = e.reserve("u", "gpu", 1)
    assert hold is not None and e.settle("u", "gpu", hold, 1)
    if not e.store.url.startswith("redis"):  # Redis drops them by its own TTL, in real time
        assert len(list(e.store.scan("settled:"))) == 1
    assert e.value("u", "gpu") == 51


def test_hypothetical_margins_convert_units_to_the_credits_unit(engines: Engines) -> None:
    e, _ = engines.policy(
        {"storage": limit(1000, "mb", mode="soft")}, credits={"mb": {"stof_units": "MB", "price": {"amount": 0.001}}}
    )
    # '2GB' is 2,000 MB: 1,000 MB past the included 1,000, at $0.001 each
    breakdown = e.local_margin_breakdown("main", {"storage": "2GB"})
    assert breakdown is not None and breakdown["revenue"] == D("1.000")
    with pytest.raises(InvalidArgumentError):
        e.local_margin_breakdown("main", {"storage": "2s"})
