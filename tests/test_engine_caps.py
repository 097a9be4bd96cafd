"""Spend caps (reference/limitr.md §2.10, §3.5) and seed 003 end to end."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from limitr_py import Cap, InvalidArgumentError
from tests.engine_helpers import Engines, Recorder, limit

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("seed003", ROOT / "examples" / "seed003_ai_spend_caps.py")
assert _spec is not None and _spec.loader is not None
seed003 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed003)


def at(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def test_seed_003_included_usage_grants_and_two_independent_clocks() -> None:
    policy_, clock = seed003.build()
    rec = Recorder(policy_)
    allow = lambda tokens: policy_.allow("cus_123", "ai_chat", tokens)  # noqa: E731

    assert allow(16667)  # the $50 of included usage never touches either cap
    assert seed003.caps(policy_) == (0, 0)
    assert allow(10000)  # 10,000 tokens of overage × $0.0003 = $3.00 on both caps, in dollars
    assert seed003.caps(policy_) == (D(3), D(3))

    # a $12 promo grant covers 40,000 tokens; with ignore_grants its spend does not count
    assert policy_.grant("cus_123", "usd", 12, expires_on=at(31)) is not None
    assert allow(20000) and allow(20000)
    assert seed003.caps(policy_) == (D(3), D(3))
    assert policy_.credit_remaining("cus_123", "usd") == 0
    covered = [e for e in rec.events if e.name == "meter-changed" and "grant_value_applied" in e.payload]
    assert [e.payload["grant_value_applied"] for e in covered] == [20000, 20000]

    clock.set(at(9))  # Monday: the weekly guardrail starts again, the monthly cap keeps counting
    assert seed003.caps(policy_) == (D(3), D(0))
    assert allow(10000)  # $3
    rec.take()
    assert allow(40000)  # $12: the weekly cap reaches its $15 ceiling exactly
    assert seed003.caps(policy_) == (D(18), D(15))
    assert "cap-threshold-crossed" in rec.names()
    assert not allow(1)  # one more token would pass the weekly ceiling
    assert rec.events[-1].name == "cap-limit" and rec.events[-1].payload["cap"]["id"] == "ai_weekly_guardrail"

    clock.set(at(16))
    assert not allow(10000)  # $3 would take the monthly cap to $21
    assert rec.events[-1].payload["cap"]["id"] == "ai_overage_cap"
    assert allow(6000)  # $1.80
    assert seed003.caps(policy_) == (D("19.8"), D("1.8"))

    clock.set(datetime(2026, 4, 1, 1, tzinfo=UTC))  # Wednesday: the plan and the monthly cap start again
    assert allow(16667 + 6000) and seed003.caps(policy_) == (D("1.8"), D("1.8"))
    clock.set(datetime(2026, 4, 6, 1, tzinfo=UTC))  # Monday: only the weekly one starts again
    assert seed003.caps(policy_) == (D("1.8"), D(0))


def test_seed_003_without_ignore_grants_grant_covered_spend_counts() -> None:
    policy_, _ = seed003.build()
    policy_.add_customer_cap("cus_123", 100, cap_id="margin_guard", overage_only=True)
    policy_.allow("cus_123", "ai_chat", 16667)
    policy_.grant("cus_123", "usd", 12)
    policy_.allow("cus_123", "ai_chat", 20000)  # $6, all covered by the grant
    guard = policy_.customer_cap("cus_123", "margin_guard")
    assert guard is not None and guard.meter_value == 6
    assert seed003.caps(policy_) == (0, 0)


PRICED = {"tok": {"price": {"amount": 0.5}}}


def soft(value: int = 10) -> dict[str, object]:
    return {"chat": limit(value, "tok", mode="soft"), "other": limit(100, "tok", mode="soft")}


def test_a_plain_cap_counts_from_the_first_unit_and_denies_before_moving_anything(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 5, cap_id="c")
    assert engine.allow("u", "chat", 8)  # 8 × 0.5 = $4, though inside the included 10
    before = engine.customers()
    assert not engine.allow("u", "chat", 3)  # $1.5 would make $5.5
    assert engine.customers() == before
    assert engine.allow("u", "chat", 2)  # exactly $5
    assert engine.customer_cap("u", "c").meter_value == 5  # type: ignore[union-attr]
    decision = engine.explain("u", "chat", 1)
    assert decision.gate == "cap" and decision.limit_type == "cap" and decision.headroom == 0


def test_credit_denominated_cap_is_not_exchangeable_and_counts_units(engines: Engines) -> None:
    engine, _ = engines.policy(
        {"chat": limit(100, "tok", mode="soft"), "img": limit(100, "img", mode="soft")},
        credits={"tok": {"price": {"amount": 0.5}}, "img": {"price": {"amount": 2}}},
    )
    engine.create_customer("u")
    cap = engine.add_customer_cap("u", 10, cap_id="tokens", credit="tok")
    assert cap is not None and not cap.exchangeable
    assert engine.allow("u", "img", 50)  # another credit: not this cap's business
    assert engine.allow("u", "chat", 10) and not engine.allow("u", "chat", 1)
    assert engine.customer_cap("u", "tokens").meter_value == 10  # type: ignore[union-attr]


def test_scope_limits_a_cap_to_named_entitlements(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 1, cap_id="chat_only", scope=["chat"])
    assert engine.allow("u", "other", 10)  # $5 elsewhere
    assert engine.allow("u", "chat", 2) and not engine.allow("u", "chat", 1)


def test_observe_only_cap_never_denies_but_reports_its_crossing_once(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 2, cap_id="watch", observe_only=True)
    rec = Recorder(engine)
    assert engine.allow("u", "chat", 3) and engine.allow("u", "chat", 3) and engine.allow("u", "chat", 3)
    assert rec.names().count("cap-threshold-crossed") == 1
    assert engine.customer_cap("u", "watch").meter_value == D("4.5")  # type: ignore[union-attr]


def test_hard_trailing_cap_lets_one_call_cross(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 2, cap_id="t", hard_trailing=True)
    assert engine.allow("u", "chat", 3)  # $1.5
    assert engine.allow("u", "chat", 3)  # the cap was below $2 before this call
    assert not engine.allow("u", "chat", 1)
    assert engine.customer_cap("u", "t").meter_value == 3  # type: ignore[union-attr]


def test_follow_decrements_gives_room_back_and_other_caps_keep_their_count(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 10, cap_id="follows", follow_decrements=True)
    engine.add_customer_cap("u", 10, cap_id="keeps")
    engine.allow("u", "chat", 6)
    engine.allow("u", "chat", -4)
    assert engine.customer_cap("u", "follows").meter_value == 1  # type: ignore[union-attr]
    assert engine.customer_cap("u", "keeps").meter_value == 3  # type: ignore[union-attr]


def test_overhead_cost_cap_counts_provider_cost_not_price(engines: Engines) -> None:
    credits = {"tok": {"price": {"amount": 0.5}, "overhead_cost": 0.1}}
    engine, _ = engines.policy(soft(), credits=credits)
    engine.create_customer("u")
    engine.add_customer_cap("u", 1, cap_id="cost", overhead_cost=True)
    assert engine.allow("u", "chat", 6)  # cost 0.6
    assert engine.allow("u", "chat", 0, overhead="0.3")  # an overhead-only call counts its overhead
    assert not engine.allow("u", "chat", 2)  # 0.9 + 0.2 > 1
    assert engine.customer_cap("u", "cost").meter_value == D("0.9")  # type: ignore[union-attr]


def test_rolling_cap_resets_on_its_own_period_and_expired_caps_stop_applying(engines: Engines) -> None:
    engine, clock = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 1, cap_id="daily", reset_inc="1day", scope=["chat"])
    engine.add_customer_cap("u", 1, cap_id="temp", expires_on=clock.now() + timedelta(hours=1), scope=["other"])
    assert engine.allow("u", "chat", 2) and not engine.allow("u", "chat", 1)
    clock.advance(days=1, seconds=1)
    assert engine.customer_cap("u", "daily").meter_value == 0  # type: ignore[union-attr]
    assert engine.allow("u", "chat", 2)
    assert engine.customer_cap("u", "temp") is None
    assert engine.allow("u", "other", 10)


def test_all_applicable_caps_must_have_room(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    engine.add_customer_cap("u", 100, cap_id="big")
    engine.add_customer_cap("u", 1, cap_id="small")
    assert not engine.allow("u", "chat", 3)
    assert engine.customer_cap("u", "big").meter_value == 0  # type: ignore[union-attr]


def test_shared_org_cap_is_reached_from_two_users_and_filtered_by_type(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("org", type="org")
    engine.create_customer("alice", refs=["org"])
    engine.create_customer("bot", type="service", refs=["org"])
    engine.add_customer_cap("org", 5, cap_id="org_budget", shared=True, shared_with=["user"])
    engine.add_customer_cap("org", 1, cap_id="org_private")  # not shared: only the org's own calls
    engine.create_customer("bob", refs=["org"])
    rec = Recorder(engine)
    assert engine.allow("alice", "chat", 6)  # $3
    assert engine.allow("bob", "chat", 4)  # $2: the shared cap is at $5
    assert not engine.allow("bob", "chat", 1)
    assert engine.allow("bot", "chat", 100)  # a service is not in shared_with
    assert engine.customer_cap("org", "org_budget").meter_value == 5  # type: ignore[union-attr]
    assert engine.customer_cap("org", "org_private").meter_value == 0  # type: ignore[union-attr]
    assert rec.names().count("customer-set") == 2  # the org changed on both allowed user calls


def test_call_scoped_caps_apply_to_one_call_and_leave_nothing(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    assert not engine.allow("u", "chat", 3, cap={"rune": 1})  # $1.5 > $1
    assert engine.allow("u", "chat", 2, cap={"rune": 1})
    assert engine.check("u", "chat", 4, cap=Cap(id="x", value=D(2)))
    assert not engine.check("u", "chat", 5, cap=Cap(id="x", value=D(2)))
    assert engine.customer_state("u").caps == {}  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError):
        engine.allow("u", "chat", 1, cap={"rune": "lots"})


def test_cap_management(engines: Engines) -> None:
    engine, _ = engines.policy(soft(), credits=PRICED)
    engine.create_customer("u")
    rec = Recorder(engine)
    assert engine.add_customer_cap("ghost", 1) is None
    assert engine.add_customer_cap("u", 1, credit="nothing") is None
    made = engine.add_customer_cap("u", 3, cap_id="c")
    assert made is not None and made.exchangeable and made.credit == "rune"
    assert engine.add_customer_cap("u", 3, cap_id="c") is None  # the id is taken
    engine.allow("u", "chat", 4)
    assert engine.reset_customer_cap("u", "c") and engine.customer_cap("u", "c").meter_value == 0  # type: ignore[union-attr]
    assert engine.remove_customer_cap("u", "c") and engine.customer_cap("u", "c") is None
    assert not engine.remove_customer_cap("u", "c")
    assert rec.names()[:2] == ["customer-cap-added", "customer-set"]
    assert "customer-cap-reset" in rec.names() and "customer-cap-removed" in rec.names()
    with pytest.raises(InvalidArgumentError):
        engine.add_customer_cap("u", 1, reset_inc="1day", reset_sch="weekly:mon")


VOLUME_TOKENS = {
    "tok": {
        "pricing_model": "volume",
        "tiers": [{"up_to": 100, "price": {"amount": D("0.01")}}, {"price": {"amount": D("0.005")}}],
    }
}


@pytest.mark.parametrize("observe_only", [True, False])
def test_a_cap_follows_the_true_total_across_a_volume_band_crossing(engines: Engines, observe_only: bool) -> None:
    # Limitr's own volume test: every unit is priced at the band of the total, so the 101st unit reprices the
    # first 100 at 0.005 and lowers the total; the cap counts the total as priced now, without follow_decrements
    # (which is about units the caller gives back). Before, the lowering was dropped: 1.00, 1.00, 1.50.
    engine, _ = engines.policy({"t": limit(0, "tok", mode="soft")}, credits=VOLUME_TOKENS)
    engine.create_customer("u")
    engine.add_customer_cap("u", 100, cap_id="spend", observe_only=observe_only)
    seen = []
    for units in (100, 1, 100):  # 100 × 0.01 = 1.00; 101 × 0.005 = 0.505; 201 × 0.005 = 1.005
        assert engine.allow("u", "t", units)
        cap = engine.customer_cap("u", "spend")
        assert cap is not None
        seen.append(cap.meter_value)
    assert seen == [D("1.00"), D("0.505"), D("1.005")]


def test_giving_units_back_lowers_only_follow_decrements_caps_under_volume_pricing(engines: Engines) -> None:
    engine, _ = engines.policy({"t": limit(0, "tok", mode="soft")}, credits=VOLUME_TOKENS)
    engine.create_customer("u")
    engine.add_customer_cap("u", 100, cap_id="plain")
    engine.add_customer_cap("u", 100, cap_id="follows", follow_decrements=True)
    assert engine.allow("u", "t", 50) and engine.allow("u", "t", -10)  # 50 × 0.01 = 0.50, then 40 × 0.01 = 0.40
    plain, follows = engine.customer_cap("u", "plain"), engine.customer_cap("u", "follows")
    assert plain is not None and follows is not None
    assert (plain.meter_value, follows.meter_value) == (D("0.50"), D("0.40"))
