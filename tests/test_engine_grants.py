"""Grants and top-ups (reference/limitr.md §2.8, §2.11 Grant, §3.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from limitr_py import Limitr, ManualClock
from tests.engine_helpers import Engines, Recorder, limit

CREDITS = {"tok": {"price": {"amount": 0.01}}, "gem": {"price": {"amount": 0.02}}}
TOPUPS = {
    "pack": {"credit": "tok", "value": 50},
    "monthly_bonus": {
        "credit": "tok",
        "value": 20,
        "included": True,
        "resets": True,
        "reset_sch": "monthly:1",
        "reset_mode": "add",
        "max_balance": 50,
    },
    "org_rollover": {
        "credit": "tok",
        "value": 30,
        "included": True,
        "included_scopes": ["org"],
        "resets": True,
        "reset_inc": "1day",
        "reset_mode": "rollover",
        "rollover_pct": 0.5,
        "rollover_max": 10,
    },
}
ENTS = {"chat": limit(100, "tok", mode="soft"), "api": limit(10, "tok"), "ctl": limit(10, "tok", grants_apply=False)}


def engine(
    engines: Engines, strategy: str = "expires_first", topups: dict[str, Any] | None = None
) -> tuple[Limitr, ManualClock]:
    """The default plan `main` has ENTS and `topups`; plan `bare` has the same entitlements and no top-ups."""
    main: dict[str, Any] = {"default": True, "entitlements": ENTS, "topups": topups or {}}
    return engines.policy(
        ENTS,
        credits=CREDITS,
        plans={"main": main, "bare": {"entitlements": ENTS}},
        exchange={"grant_strategy": strategy},
    )


def balances(e: Limitr, customer: str = "u") -> dict[str, D]:
    return {g.id: g.value for g in e.grants(customer)}


def test_soft_overage_is_covered_partially_and_billed_from_where_coverage_ended(engines: Engines) -> None:
    e, _ = engine(engines)
    e.create_customer("u")
    e.grant("u", "tok", 30, grant_id="promo")
    e.allow("u", "chat", 100)
    rec = Recorder(e)
    assert e.allow("u", "chat", 50)  # 50 past the limit: 30 from the grant, 20 billed at $0.01
    (event,) = rec.events
    assert event.name == "meter-overage"
    assert event.payload["grant_value_applied"] == 30 and event.payload["overage"] == 20
    assert event.payload["overage_price"] == D("0.20") and event.payload["meter"]["price_diff"] == D("0.50")
    assert balances(e) == {} and e.credit_remaining("u", "tok") == 0  # a drained grant that does not reset goes


def test_hard_limit_runs_past_its_value_only_when_grants_cover_all_of_it(engines: Engines) -> None:
    e, _ = engine(engines)
    e.create_customer("u")
    e.grant("u", "tok", 5, grant_id="promo")
    assert e.allow("u", "api", 10)
    assert e.limit("u", "api") == 15 and e.limit("u", "api", grants=False) == 10
    assert e.remaining("u", "api") == 5
    assert not e.allow("u", "api", 6)  # 6 past the limit, 5 in grants: nothing drawn
    assert balances(e) == {"promo": 5}
    rec = Recorder(e)
    assert e.allow("u", "api", 5)
    assert rec.events[0].name == "meter-changed" and rec.events[0].payload["grant_value_applied"] == 5
    assert e.value("u", "api") == 15 and e.remaining("u", "api") == -5


def test_grants_apply_false_keeps_a_control_limit_hard(engines: Engines) -> None:
    e, _ = engine(engines)
    e.create_customer("u")
    e.grant("u", "tok", 100)
    assert e.allow("u", "ctl", 10) and not e.allow("u", "ctl", 1)
    assert e.limit("u", "ctl") == 10


def test_expired_grants_stop_counting(engines: Engines) -> None:
    e, clock = engine(engines)
    e.create_customer("u")
    e.grant("u", "tok", 5, grant_id="week", expires_on=clock.now() + timedelta(days=7))
    e.allow("u", "api", 10)
    assert e.check("u", "api", 5)
    clock.advance(days=7, seconds=1)
    assert not e.check("u", "api", 1) and balances(e) == {}


def test_exact_credit_grants_are_drawn_before_others_which_convert_through_runes(engines: Engines) -> None:
    e, _ = engine(engines)
    e.create_customer("u")
    e.grant("u", "usd", 1, grant_id="dollar")  # $1 = 100 tok at $0.01
    e.grant("u", "tok", 10, grant_id="tokens")
    assert e.credit_remaining("u", "tok") == 110 and e.credit_remaining("u", "rune") == D("1.10")
    e.allow("u", "chat", 115)  # 15 over: 10 from `tokens`, then 5 tok = $0.05 from `dollar`
    assert balances(e) == {"dollar": D("0.95")}


def test_expires_first_draws_the_grant_that_expires_soonest(engines: Engines) -> None:
    e, clock = engine(engines)
    e.create_customer("u")
    e.grant("u", "tok", 10, grant_id="forever")
    e.grant("u", "tok", 10, grant_id="soon", expires_on=clock.now() + timedelta(days=5))
    e.allow("u", "chat", 105)
    assert balances(e) == {"forever": 10, "soon": 5}


def test_valuable_and_cheapest_first_pick_by_rune_value_per_unit(engines: Engines) -> None:
    for strategy, expected in (
        ("valuable_first", {"dollar": D("0.95"), "gems": 10}),
        ("cheapest_first", {"dollar": 1, "gems": D("7.5")}),
    ):
        e, _ = engine(engines, strategy)
        e.create_customer("u")
        e.grant("u", "usd", 1, grant_id="dollar")  # $1 per unit
        e.grant("u", "gem", 10, grant_id="gems")  # $0.02 per unit
        e.allow("u", "chat", 105)  # 5 tok = $0.05 = 2.5 gems
        assert balances(e) == expected, strategy


def test_topups_are_bought_and_included_ones_refill_in_add_mode_up_to_max_balance(engines: Engines) -> None:
    e, clock = engine(engines, topups=TOPUPS)
    rec = Recorder(e)
    e.create_customer("u")
    assert balances(e) == {"included:monthly_bonus": 20}  # not filled twice on the first day
    assert e.apply_customer_topup("u", "pack") and not e.apply_customer_topup("u", "nope")
    granted = [ev for ev in rec.events if ev.name == "customer-topup-granted"]
    assert granted[0].payload["topup_name"] == "pack" and granted[0].payload["plan_name"] == "main"
    assert e.credit_remaining("u", "tok") == 70
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    assert balances(e)["included:monthly_bonus"] == 40  # 20 + 20
    clock.set(datetime(2026, 5, 1, tzinfo=UTC))
    assert balances(e)["included:monthly_bonus"] == 50  # 60 clamped to max_balance
    # reads never write: on the first call in May both missed refills are replayed (20 → 40 → 50)
    e.allow("u", "chat", 1)
    assert balances(e)["included:monthly_bonus"] == 50


def test_included_scopes_and_rollover_with_clamped_carry(engines: Engines) -> None:
    e, clock = engine(engines, topups=TOPUPS)
    e.create_customer("u")
    e.create_customer("busy", type="org")
    e.create_customer("idle", type="org")
    assert "included:org_rollover" not in balances(e, "u")
    e.allow("busy", "chat", 125)  # 25 over: the monthly bonus (20, created first) then 5 of the rollover grant
    assert balances(e, "busy") == {"included:monthly_bonus": 0, "included:org_rollover": 25}
    clock.advance(days=1, microseconds=1)
    # busy: carry 25 × 0.5 = 12.5, clamped to 10 → 40; idle: 30 × 0.5 = 15 → 10 → 40
    assert balances(e, "busy")["included:org_rollover"] == 40
    assert balances(e, "idle")["included:org_rollover"] == 40
    e.allow("busy", "chat", 38)
    clock.advance(days=1)
    assert balances(e, "busy")["included:org_rollover"] == 31  # carry 2 × 0.5 = 1


def test_topup_grants_leave_when_the_plan_no_longer_has_the_topup(engines: Engines) -> None:
    e, _ = engine(engines, topups=TOPUPS)
    e.create_customer("u")
    e.grant("u", "tok", 3, grant_id="promo")
    assert e.set_customer_plan("u", "bare")
    e.ensure_included_topups("u")
    assert balances(e) == {"promo": 3}
