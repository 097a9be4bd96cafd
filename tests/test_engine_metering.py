"""allow / check / increment / track against Limitr 0.7's semantics (reference/limitr.md §3.2, §3.3)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from limitr_py import InvalidArgumentError
from tests.engine_helpers import Engines, Recorder, limit


def test_hard_limit_denies_exactly_the_call_that_would_pass_it_and_changes_nothing(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(100)})
    engine.create_customer("u")
    rec = Recorder(engine)
    assert engine.allow("u", "api", 60)
    before = engine.customers()
    assert not engine.allow("u", "api", 41)  # 60 + 41 = 101 > 100
    assert engine.customers() == before  # a denied call moves nothing
    assert engine.allow("u", "api", 40)  # 100 exactly is inside the limit
    assert not engine.allow("u", "api", D("0.000000001"))
    assert engine.value("u", "api") == 100 and engine.remaining("u", "api") == 0
    names = rec.names()
    # filling the limit exactly is the transition from allowed to not allowed: `limit-reached` once
    assert names == ["meter-changed", "meter-limit", "meter-changed", "limit-reached", "meter-limit"]
    assert rec.events[3].payload["limit_type"] == "included"
    denied = rec.events[1].payload
    assert denied["meter"]["value"] == 60 and denied["invalid_value"] == 101 and denied["overage"] == 1


def test_soft_limit_overage_events_price_only_the_part_past_the_limit_and_refund_on_decrement(engines: Engines) -> None:
    engine, _ = engines.policy({"chat": limit(10, "tok", mode="soft")}, credits={"tok": {"price": {"amount": 0.5}}})
    engine.create_customer("u")
    rec = Recorder(engine)
    assert engine.allow("u", "chat", 8)
    assert engine.allow("u", "chat", 5)  # 13: 3 past the limit
    assert engine.allow("u", "chat", 2)  # 15: 2 more
    assert engine.allow("u", "chat", -4)  # 11: back under by 4 billable units
    changed, over1, over2, refund = rec.take()
    assert (changed.name, changed.payload["meter"]["price_diff"]) == ("meter-changed", 0)
    assert over1.name == "meter-overage" and over1.payload["overage"] == 3
    assert over1.payload["overage_price"] == D("1.5") and over1.payload["remaining"] == -3
    assert over2.payload["overage"] == 2 and over2.payload["overage_price"] == D("1.0")
    # billable 5 → 1: a refund of 4 units × 0.5
    assert refund.name == "meter-changed" and refund.payload["meter"]["price_diff"] == D("-2.0")


TIERS = [{"up_to": 5, "price": {"amount": 1}}, {"up_to": 10, "price": {"amount": 2}}, {"price": {"amount": 3}}]


def test_graduated_prices_walk_the_tiers_from_the_customers_position(engines: Engines) -> None:
    engine, _ = engines.policy(
        {"chat": limit(100, "tok", mode="soft")}, credits={"tok": {"pricing_model": "tiered", "tiers": TIERS}}
    )
    engine.create_customer("u")
    rec = Recorder(engine)
    engine.allow("u", "chat", 100)  # exactly the included amount: nothing billable
    engine.allow("u", "chat", 7)  # billable 0 → 7: 5×1 + 2×2 = 9
    engine.allow("u", "chat", 4)  # billable 7 → 11: 3×2 + 1×3 = 9
    engine.allow("u", "chat", 1)  # 11 → 12: 1×3
    prices = [e.payload["meter"]["price_diff"] for e in rec.take()]
    assert prices == [0, 9, 9, 3]


def test_volume_pricing_can_credit_a_call_that_crosses_into_a_cheaper_band(engines: Engines) -> None:
    tiers = [{"up_to": 10, "price": {"amount": 2}}, {"price": {"amount": 1}}]
    engine, _ = engines.policy(
        {"chat": limit(0, "tok", mode="soft")}, credits={"tok": {"pricing_model": "volume", "tiers": tiers}}
    )
    engine.create_customer("u")
    rec = Recorder(engine)
    engine.allow("u", "chat", 10)  # 10 × 2 = 20
    engine.allow("u", "chat", 1)  # total 11 × 1 = 11: the marginal price is 11 − 20 = −9
    assert [e.payload["overage_price"] for e in rec.take()] == [20, -9]


def test_limit_pricing_overrides_the_credit_price_in_overage_coordinates(engines: Engines) -> None:
    pricing = {"pricing_model": "package", "billing_units": 1000, "price": {"amount": 5}}
    engine, _ = engines.policy(
        {"emails": limit(10000, "email", mode="soft", pricing=pricing)}, credits={"email": {"price": {"amount": 1}}}
    )
    engine.create_customer("u")
    rec = Recorder(engine)
    engine.allow("u", "emails", 10000)
    engine.allow("u", "emails", 1)  # the first started block of 1,000: 5
    engine.allow("u", "emails", 999)  # same block: 0
    engine.allow("u", "emails", 1)  # second block: 5
    assert [e.payload["meter"]["price_diff"] for e in rec.take()] == [0, 5, 0, 5]


def test_observe_never_denies_and_has_no_remaining(engines: Engines) -> None:
    engine, _ = engines.policy({"audit": limit(5, mode="observe")})
    engine.create_customer("u")
    rec = Recorder(engine)
    assert engine.allow("u", "audit", 100) and engine.check("u", "audit", 10**9)
    assert engine.value("u", "audit") == 100
    assert engine.remaining("u", "audit") is None and engine.limit("u", "audit") is None
    assert rec.names() == ["meter-changed"]


def test_hard_trailing_lets_one_call_cross_then_denies(engines: Engines) -> None:
    engine, _ = engines.policy({"gpu": limit(10, hard_trailing=True)})
    engine.create_customer("u")
    assert engine.allow("u", "gpu", 8)
    assert engine.allow("u", "gpu", 5)  # meter was 8 < 10 before the call
    assert not engine.allow("u", "gpu", 1)
    assert engine.remaining("u", "gpu") == -3
    assert engine.allow("u", "gpu", -1)  # decrements always pass


def test_minimum_floors_the_meter(engines: Engines) -> None:
    engine, _ = engines.policy({"seats": limit(10, minimum=2)})
    engine.create_customer("u")
    engine.allow("u", "seats", 5)
    assert engine.allow("u", "seats", -10)
    assert engine.value("u", "seats") == 2


def test_increment_and_decrement_use_the_limits_standard_step(engines: Engines) -> None:
    engine, _ = engines.policy({"seats": limit(10, increment=4)})
    engine.create_customer("u")
    assert engine.cost("u", "seats") == 4 and engine.cost("main", "seats") == 4
    assert engine.increment("u", "seats") and engine.increment("u", "seats")
    assert not engine.check_increment("u", "seats")  # 12 > 10
    assert not engine.increment("u", "seats")
    assert engine.check_decrement("u", "seats")
    assert engine.decrement("u", "seats")
    assert engine.value("u", "seats") == 4


def test_values_with_units_convert_exactly_to_the_credits_unit(engines: Engines) -> None:
    engine, _ = engines.policy({"storage": limit("1GB", "mb")}, credits={"mb": {"stof_units": "MB"}})
    engine.create_customer("u")
    assert engine.limit("u", "storage") == 1000
    assert engine.allow("u", "storage", "250MB") and engine.allow("u", "storage", "0.5GB")
    assert engine.value("u", "storage") == 750
    assert engine.allow("u", "storage", "1MiB")  # 1.048576 MB
    assert engine.value("u", "storage") == D("751.048576")
    assert not engine.allow("u", "storage", "249MB")
    with pytest.raises(InvalidArgumentError):
        engine.allow("u", "storage", "1s")  # a time is not a size


def test_floats_go_through_str_so_tenths_add_up(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(1)})
    engine.create_customer("u")
    for _ in range(3):
        engine.allow("u", "api", 0.1)
    assert engine.value("u", "api") == D("0.3")


@pytest.mark.parametrize("bad", ["abc", float("nan"), float("inf"), True, None, "10parsecs", [1]])
def test_malformed_values_raise_and_change_nothing(engines: Engines, bad: object) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    engine.allow("u", "api", 3)
    before = engine.customers()
    with pytest.raises(InvalidArgumentError):
        engine.allow("u", "api", bad)
    with pytest.raises(InvalidArgumentError):
        engine.check("u", "api", bad)
    assert engine.customers() == before


def test_unknown_customer_or_entitlement_is_a_plain_denial(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10), "beta": {}})
    engine.create_customer("u")
    assert not engine.allow("ghost", "api", 1) and not engine.check("ghost", "api")
    assert not engine.allow("u", "nope", 1)
    assert engine.value("ghost", "api") is None and engine.remaining("u", "nope") is None
    assert engine.allow("u", "beta") and engine.check("u", "beta")  # a feature flag: the plan has it
    assert engine.value("u", "beta") is None


def test_feature_flags_record_nothing_and_send_no_events(engines: Engines) -> None:
    engine, _ = engines.policy({"beta": {}})
    engine.create_customer("u")
    rec = Recorder(engine)
    before = engine.customers()
    assert engine.allow("u", "beta", 5)
    assert engine.customers() == before and rec.names() == []


def test_scoped_entitlement_meters_on_the_nearest_customer_of_that_type(engines: Engines) -> None:
    engine, _ = engines.policy({"seats": {"scope": "org", **limit(3)}, "api": limit(100)})
    engine.create_customer("acme", type="org")
    engine.create_customer("team", type="team", refs=["acme"])
    for i in range(4):
        engine.create_customer(f"user{i}", refs=["team"])
    assert [engine.allow(f"user{i}", "seats", 1) for i in range(4)] == [True, True, True, False]
    assert engine.value("acme", "seats") == 3
    assert engine.value("user0", "seats") == 3  # the read resolves the same meter
    engine.create_customer("loner")
    assert not engine.allow("loner", "seats", 1)  # no org to meter on: as if absent
    engine.allow("user0", "api", 7)  # unscoped: the user's own meter
    assert engine.value("user0", "api") == 7 and engine.value("user1", "api") == 0


def test_scope_search_survives_reference_cycles(engines: Engines) -> None:
    engine, _ = engines.policy({"seats": {"scope": "org", **limit(3)}})
    engine.create_customer("a", type="team", refs=["b"])
    engine.create_customer("b", type="team", refs=["a"])
    assert not engine.allow("a", "seats", 1)


def test_event_argument_turns_events_off_or_carries_event_data(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    rec = Recorder(engine)
    engine.allow("u", "api", 1, event=False)
    engine.allow("u", "api", 1, event="")
    assert rec.names() == []
    engine.allow("u", "api", 1, event={"request": "r1"})
    engine.allow("u", "api", 1, event='{"request": "r2"}')
    assert [e.payload["event_data"] for e in rec.take()] == [{"request": "r1"}, {"request": "r2"}]
    assert engine.value("u", "api") == 4


def test_governor_bucket_limits_bursts_below_the_hard_limit(engines: Engines) -> None:
    # capacity 3, refill 0.001 tokens/ms = one token per second
    engine, clock = engines.policy(
        {"api": limit(1000, governor_enabled=True, governor_capacity=3, governor_refill_rate=0.001)}
    )
    engine.create_customer("u")
    rec = Recorder(engine)
    assert [engine.allow("u", "api", 1) for _ in range(4)] == [True, True, True, False]
    governed = rec.events[-1]
    assert governed.name == "meter-governed" and governed.payload["governor"]["tokens"] == 0
    assert engine.allowance("u", "api") == 0 and engine.remaining("u", "api") == 997
    clock.advance(timedelta(milliseconds=1500))
    assert engine.allowance("u", "api") == D("1.5")
    assert engine.check("u", "api", 1) and not engine.check("u", "api", 2)
    assert engine.allow("u", "api", 1) and not engine.allow("u", "api", 1)
    assert engine.value("u", "api") == 4


def test_overhead_from_argument_rate_table_callable_and_cost_per_unit(engines: Engines) -> None:
    credits = {
        "tok": {
            "overhead_cost": 0.001,
            "overhead": {"by": "model", "rates": {"sonnet": {"input": 0.000003, "output": 0.000015}}},
        }
    }
    engine, _ = engines.policy({"chat": limit(10**6, "tok")}, credits=credits)
    engine.create_customer("u")
    rec = Recorder(engine)
    engine.allow("u", "chat", 100, event={"model": "sonnet", "input": 1000, "output": 200})
    engine.allow("u", "chat", 100, event={"model": "other"})  # no row: 100 × 0.001
    engine.allow("u", "chat", 100, overhead="0.25")
    engine.allow("u", "chat", 0, overhead="0.5")  # cost with no units still moves the meter's overhead
    diffs = [e.payload["meter"]["overhead_diff"] for e in rec.events]
    # 1000 × 0.000003 + 200 × 0.000015 = 0.003 + 0.003
    assert diffs == [D("0.006"), D("0.1"), D("0.25"), D("0.5")]
    assert rec.events[-1].payload["meter"]["overhead"] == D("0.856")

    def cost(units: D, context: object) -> D:
        return units * D("0.01")

    from limitr_py import Limitr

    other = Limitr.new(
        {
            "policy": {
                "credits": credits,
                "plans": {"p": {"default": True, "entitlements": {"chat": limit(10**6, "tok")}}},
            }
        },
        overhead={"tok": cost},
    )
    other.create_customer("u")
    rec2 = Recorder(other)
    other.allow("u", "chat", 50)
    assert rec2.events[0].payload["meter"]["overhead_diff"] == D("0.5")


def test_rate_acceleration_and_projected_exhaustion_follow_the_history(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(100)})
    engine.create_customer("u")
    engine.allow("u", "api", 10)
    clock.advance(timedelta(seconds=1))
    engine.allow("u", "api", 20)
    assert engine.rate("u", "api") == D("0.02")  # 20 units over 1000 ms
    clock.advance(timedelta(seconds=2))
    engine.allow("u", "api", 10)
    assert engine.rate("u", "api") == D("0.005")
    assert engine.acceleration("u", "api") == D("0.005") - D("0.02")
    # 60 left at 0.005 units/ms: 12,000 ms
    assert engine.projected_exhaustion("u", "api") == timedelta(seconds=12)


def test_the_smoothed_rate_is_kept_to_28_digits_and_projects_exhaustion(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(100)})  # ewma_alpha 0.2 (the default)
    engine.create_customer("u")
    engine.allow("u", "api", 10)  # one entry: rate 0, ewma 0
    clock.advance(timedelta(milliseconds=3))
    engine.allow("u", "api", 1)  # rate 1/3 per ms: ewma 0.2 × 1/3 + 0.8 × 0 = 0.0666…
    state = engine.customer_state("u")
    assert state is not None
    ewma = state.meters["api"].ewma_rate
    assert ewma is not None and len(ewma.as_tuple().digits) == 28  # not the engine context's 200
    assert ewma == D("0.06666666666666666666666666667")
    # 89 left at 0.0666… units/ms: 89 × 15 = 1335 ms less a hair (the 28th digit was rounded up), and a
    # projection is truncated to the µs
    assert engine.projected_exhaustion("u", "api", smoothed=True) == timedelta(microseconds=1_334_999)


def test_check_and_explain_agree_and_name_the_deciding_gate(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    engine.allow("u", "api", 8)
    decision = engine.explain("u", "api", 3)
    assert not decision.allowed and decision.gate == "limit" and decision.limit_type == "included"
    assert decision.headroom == 2
    assert [g.name for g in decision.gates] == ["reset", "limit"]
    assert engine.explain("u", "api", 2).allowed and engine.check("u", "api", 2)
    assert engine.explain("ghost", "api").gate == "customer"
    assert engine.explain("u", "nope").gate == "entitlement"


def test_credit_exchange_chains_through_runes(engines: Engines) -> None:
    engine, _ = engines.policy(
        {"api": limit(10, "tok")},
        credits={"tok": {"price": {"amount": 0.002}}},
        exchange={"euro": {"value": 1.14, "currency": "usd"}, "partner": {"value": 2, "currency": "tok"}},
    )
    assert engine.credit_exchange("euro", "rune", 10) == D("11.40")
    assert engine.credit_exchange("partner", "rune", 1) == D("0.004")  # 2 tok × 0.002
    assert engine.credit_exchange("rune", "tok", 1) == 500
    assert engine.credit_exchange("nowhere", "rune", 1) is None


def test_notifications_re_emit_matching_events_under_their_name_and_handlers_can_be_removed(engines: Engines) -> None:
    engine, _ = engines.policy(
        {"chat": limit(10, "tok", mode="soft")},
        credits={"tok": {"price": {"amount": 1}}},
        notifications={"big_overage": {"events": ["meter-overage"], "when": "overage_price > 2"}},
    )
    engine.create_customer("u")
    seen: list[tuple[str, object]] = []

    def handler(event: object) -> None:
        seen.append((event.name, event.payload.get("overage_price")))  # type: ignore[attr-defined]

    engine.on("big_overage", handler)
    engine.allow("u", "chat", 12)  # overage 2 → price 2: no match
    engine.allow("u", "chat", 3)  # price 3: match
    assert seen == [("big_overage", 3)]
    engine.off("big_overage", handler)
    engine.allow("u", "chat", 5)
    assert seen == [("big_overage", 3)]


def test_a_failing_handler_does_not_change_the_answer(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")

    def broken(event: object) -> None:
        raise RuntimeError("handler bug")

    engine.on("meter-changed", broken)
    assert engine.allow("u", "api", 1) and engine.value("u", "api") == 1


def test_allow_explained_meters_like_allow_and_says_why_it_denied(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(5)})
    engine.create_customer("c")
    allowed = engine.allow_explained("c", "api", 5)
    denied = engine.allow_explained("c", "api", 1)
    assert (allowed.allowed, denied.allowed) == (True, False)
    assert denied.gate == "limit" and denied.limit_type == "included" and denied.headroom == 0
    assert engine.value("c", "api") == 5  # the denial metered nothing; the first call metered 5
    unknown = engine.allow_explained("nobody", "api", 1)
    assert not unknown.allowed and unknown.gate == "customer"


def test_each_event_has_its_own_128_bit_id(engines: Engines) -> None:
    """Event ids are what webhook receivers de-duplicate on: 32 hex digits (128 random bits), never repeated."""
    engine, _ = engines.policy({"api": limit(1000)})
    events = Recorder(engine)
    for n in range(50):
        engine.create_customer(f"u{n}")
        engine.allow(f"u{n}", "api", 1)
    ids = [e.id for e in events.events]
    assert len(ids) == 100 and len(set(ids)) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
