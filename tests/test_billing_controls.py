"""The seeds' billing controls with their own numbers (seeds 000, 001, 004; SPEC §3.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from limitr_py import InvalidArgumentError, Limitr, ManualClock
from tests.engine_helpers import START, Engines, Recorder, limit

SAMPLES = Path(__file__).resolve().parent.parent / "sample_policies"


def sample(engines: Engines, name: str, start: datetime = START) -> tuple[Limitr, ManualClock]:
    # on the store under test: before, these engines were always in memory whatever the backend parameter said
    return engines.engine_on(SAMPLES / name / "policy.yaml", start)


def count_allowed(engine: Limitr, customer: str, entitlement: str, calls: int, value: int = 1) -> int:
    return sum(engine.allow(customer, entitlement, value) for _ in range(calls))


# -- Owostack (seeds 000, 001) --------------------------------------------------------------------------------


def test_seats_block_the_fourth_entity_and_create_nothing(engines: Engines) -> None:
    engine, _ = sample(engines, "owostack_seats_emails")
    engine.create_customer("acme", plan="starter")
    assert [engine.add_entity("acme", f"seat{i}", feature="seats") for i in range(4)] == [True, True, True, False]
    assert engine.customer("seat3") is None and engine.value("acme", "seats") == 3
    assert engine.customer("seat0").plan == ""  # type: ignore[union-attr]  # an entity inherits its customer's plan
    assert engine.remove_entity("acme", "seat0", feature="seats") and engine.value("acme", "seats") == 2
    assert engine.add_entity("acme", "seat3", feature="seats")


def test_emails_overage_is_charged_per_started_thousand_up_to_max_overage_units(engines: Engines) -> None:
    engine, _ = sample(engines, "owostack_seats_emails")
    engine.create_customer("c", plan="pro")
    rec = Recorder(engine)
    assert engine.allow("c", "emails", 10000)
    assert engine.allow("c", "emails", 2500)  # 3 started blocks of 1,000 × $5
    assert [e.payload.get("overage_price") for e in rec.events if e.name == "meter-overage"] == [15]
    assert engine.allow("c", "emails", 17500)  # exactly 20,000 past the included amount
    assert not engine.allow("c", "emails", 1)  # the plan's max_overage
    assert engine.explain("c", "emails", 1).limit_type == "max_overage"


def test_customer_feature_config_overrides_the_plan_and_none_clears_it(engines: Engines) -> None:
    engine, _ = sample(engines, "owostack_seats_emails")
    engine.create_customer("c", plan="pro")
    engine.set_feature_config("c", "emails", overage="block")
    assert engine.allow("c", "emails", 10000) and not engine.allow("c", "emails", 1)
    engine.set_feature_config("c", "emails", overage="charge", max_overage_units=1000)
    assert engine.allow("c", "emails", 1000) and not engine.allow("c", "emails", 1)  # the request counts
    config = engine.billing_config("c")
    assert config is not None and config.feature_configs == {"emails": {"overage": "charge", "max_overage_units": 1000}}
    engine.set_feature_config("c", "emails", overage=None, max_overage_units=None)
    assert engine.billing_config("c").feature_configs == {}  # type: ignore[union-attr]
    assert engine.allow("c", "emails", 1)  # back to the plan: charge, 20,000 max
    with pytest.raises(InvalidArgumentError):
        engine.set_feature_config("c", "emails", overage="sometimes")
    with pytest.raises(InvalidArgumentError):
        engine.set_feature_config("nobody", "emails", overage="block")


def test_overage_limit_in_minor_units_lets_the_crossing_request_through_then_blocks(engines: Engines) -> None:
    engine, _ = sample(engines, "owostack_seats_emails")
    engine.create_customer("c", plan="pro")
    engine.set_overage_limit("c", max_overage_amount=1000)  # $10.00
    rec = Recorder(engine)
    engine.allow("c", "emails", 10000)
    assert engine.allow("c", "emails", 1000)  # $5 so far
    assert engine.allow("c", "emails", 1000)  # $5 before it: passes, reaching $10
    assert not engine.allow("c", "emails", 1)
    assert engine.explain("c", "emails", 1).limit_type == "spend_limit"
    assert engine.allow("c", "seats", 1)  # usage that adds no overage is not blocked
    reached = [e.payload for e in rec.events if e.name == "limit-reached"]
    assert [r["limit_type"] for r in reached] == ["spend_limit"]
    assert engine.customer("c").billing.overage_limit == {  # type: ignore[union-attr]
        "max_overage_amount": 1000,
        "on_limit_reached": "block",
    }
    engine.set_overage_limit("c", max_overage_amount=None)
    assert engine.allow("c", "emails", 1)


def test_overage_limit_notify_never_blocks_and_reports_once(engines: Engines) -> None:
    engine, _ = sample(engines, "owostack_seats_emails")
    engine.create_customer("c", plan="pro")
    engine.set_overage_limit("c", max_overage_amount=500, on_limit_reached="notify")
    rec = Recorder(engine)
    engine.allow("c", "emails", 10000)
    assert all(engine.allow("c", "emails", 1000) for _ in range(3))
    reached = [e.payload for e in rec.events if e.name == "limit-reached"]
    assert len(reached) == 1 and reached[0]["blocking"] is False


# -- Autumn (seed 004) ----------------------------------------------------------------------------------------


def test_spend_limit_of_5000_past_1000_included_allows_exactly_6000_calls_and_beats_max_overage(
    engines: Engines,
) -> None:
    engine, _ = sample(engines, "autumn_credit_system")
    engine.create_customer("c")
    engine.update_billing_controls(
        "c", spend_limits=[{"feature_id": "api_calls", "enabled": True, "overage_limit": 5000}]
    )
    assert count_allowed(engine, "c", "api_calls", 6010) == 6000
    engine.create_customer("d")
    engine.update_billing_controls("d", spend_limits=[{"feature_id": "api_calls", "overage_limit": 7000}])
    assert count_allowed(engine, "d", "api_calls", 8010) == 8000  # over the plan's max_overage of 5,000
    engine.update_billing_controls("d", spend_limits=[{"feature_id": "api_calls", "enabled": False}])
    assert engine.allow("d", "api_calls", 10**6)  # a disabled spend limit caps nothing (and shadows the plan's)


def test_overage_allowed_false_blocks_a_pay_per_use_feature_at_its_included_amount(engines: Engines) -> None:
    engine, _ = sample(engines, "autumn_credit_system")
    engine.create_customer("c")
    engine.update_billing_controls("c", overage_allowed=[{"feature_id": "api_calls", "enabled": False}])
    assert count_allowed(engine, "c", "api_calls", 1010) == 1000
    assert engine.explain("c", "api_calls", 1).limit_type == "included"


def test_overage_allowed_true_lets_an_included_feature_run_past_zero_without_billing(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(100, "call")}, credits={"call": {"price": {"amount": 1}}})
    engine.create_customer("c")
    engine.update_billing_controls("c", overage_allowed=[{"feature_id": "api", "enabled": True}])
    rec = Recorder(engine)
    assert engine.allow("c", "api", 150)
    assert engine.remaining("c", "api") == -50
    (event,) = [e for e in rec.events if e.name == "meter-overage"]
    assert event.payload["overage"] == 50 and event.payload["overage_price"] == 0
    assert engine.invoice("c").total == 0  # type: ignore[union-attr]


def test_300_monthly_credits_with_a_50_per_day_usage_limit(engines: Engines) -> None:
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)  # the growth plan has a price: windows follow the billing cycle
    engine, clock = sample(engines, "autumn_credit_system", start)
    engine.create_customer("c")
    engine.update_billing_controls("c", usage_limits=[{"feature_id": "credit", "limit": 50, "interval": "day"}])
    assert count_allowed(engine, "c", "images", 11) == 10  # 5 credits each: 50 credits today
    assert engine.explain("c", "images", 1).limit_type == "usage_limit"
    limits = engine.billing_config("c").controls["usage_limits"]  # type: ignore[union-attr]
    assert limits[0]["usage"] == 50 and limits[0]["window_start"] == start
    clock.set(start + timedelta(hours=23, minutes=59))
    assert not engine.allow("c", "images", 1)  # the day window rolls at the billing time of day
    total = 10
    for day in range(1, 7):
        clock.set(start + timedelta(days=day))
        total += count_allowed(engine, "c", "images", 11)
    assert total == 60  # 300 credits a month, at most 50 of them a day


def test_per_feature_usage_limit_inside_a_credit_system_and_the_tightest_cap_wins(engines: Engines) -> None:
    engine, _ = sample(engines, "autumn_credit_system")
    engine.create_customer("c")
    engine.update_billing_controls(
        "c",
        usage_limits=[
            {"feature_id": "exports", "limit": 10, "interval": "day"},
            {"feature_id": "credit", "limit": 100, "interval": "day"},
        ],
    )
    assert count_allowed(engine, "c", "exports", 12) == 10  # 10 credits: the exports cap binds first
    assert count_allowed(engine, "c", "images", 20) == 18  # 90 credits left today for images at 5 each
    decision = engine.explain("c", "images", 1)
    assert decision.limit_type == "usage_limit" and decision.headroom == 0


def test_usage_limit_windows_re_anchor_on_a_plan_change(engines: Engines) -> None:
    engine, clock = engines.policy(
        {"api": limit(10**6)}, plans={"paid": {"price": {"amount": 10}, "entitlements": {"api": limit(10**6)}}}
    )
    engine.create_customer("c", plan="paid")
    engine.update_billing_controls("c", usage_limits=[{"feature_id": "api", "limit": 100, "interval": "month"}])
    assert count_allowed(engine, "c", "api", 1, 100) == 1 and not engine.allow("c", "api", 1)
    clock.advance(days=3)
    assert engine.set_customer_plan("c", "main")  # no price: UTC calendar windows, counted afresh
    assert engine.allow("c", "api", 100) and not engine.allow("c", "api", 1)
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    assert engine.allow("c", "api", 100)


def test_an_80_percent_alert_fires_once_and_again_only_after_re_arming(engines: Engines) -> None:
    engine, _ = sample(engines, "autumn_credit_system")
    engine.create_customer("c")
    engine.update_billing_controls(
        "c",
        usage_alerts=[
            {"feature_id": "api_calls", "threshold": 80, "threshold_type": "usage_percentage", "name": "80%"},
            {"feature_id": "api_calls", "threshold": 900, "threshold_type": "usage"},
        ],
    )
    rec = Recorder(engine)

    def alerts() -> list[str | None]:
        return [e.payload["usage_alert"]["name"] for e in rec.take() if e.name == "usage-alert-triggered"]

    engine.allow("c", "api_calls", 799)
    assert alerts() == []
    engine.allow("c", "api_calls", 1)  # 800 of 1,000 included
    assert alerts() == ["80%"]
    engine.allow("c", "api_calls", 50)
    assert alerts() == []  # still above: no refire
    engine.allow("c", "api_calls", 100)
    assert alerts() == [None]  # the 900 usage alert
    engine.allow("c", "api_calls", -200)  # back to 750: both re-armed
    engine.allow("c", "api_calls", 200)
    assert alerts() == ["80%", None]


def test_at_most_5_auto_topups_per_month(engines: Engines) -> None:
    engine, clock = sample(engines, "autumn_credit_system", datetime(2026, 3, 2, tzinfo=UTC))
    engine.create_customer("c")
    engine.update_billing_controls(
        "c",
        auto_topups=[
            {
                "feature_id": "credit",
                "threshold": 100,
                "quantity": 1000,
                "purchase_limit": {"interval": "month", "interval_count": 1, "limit": 5},
            }
        ],
    )
    rec = Recorder(engine)
    while engine.allow("c", "images", 1):  # 5 credits each
        pass
    bought = [e.payload for e in rec.events if e.name == "auto-topup-triggered"]
    assert len(bought) == 5
    assert bought[0]["topup"] == "credit_pack" and bought[0]["amount"] == 10 and bought[0]["quantity"] == 1000
    # 300 included + 5 × 1,000 bought = 5,300 credits = 1,060 images
    assert engine.value("c", "images") == 1060
    clock.set(datetime(2026, 4, 3, tzinfo=UTC))  # a month after the purchases: the limit has room again
    assert count_allowed(engine, "c", "images", 45) == 45  # 300 fresh included credits down to 75 ≤ 100
    assert len([e for e in rec.events if e.name == "auto-topup-triggered"]) == 6
    with pytest.raises(InvalidArgumentError):
        engine.update_billing_controls("c", entity_id="e", auto_topups=[])


def test_an_orgs_monthly_limit_and_a_workspaces_daily_limit_both_hold(engines: Engines) -> None:
    engine, clock = engines.policy({"api_calls": limit(10**6, mode="soft")})
    engine.create_customer("org", type="org")
    assert engine.add_entity("org", "workspace_a") and engine.add_entity("org", "workspace_b")
    engine.update_billing_controls(
        "org", usage_limits=[{"feature_id": "api_calls", "limit": 1000, "interval": "month"}]
    )
    engine.update_billing_controls(
        "org", entity_id="workspace_a", usage_limits=[{"feature_id": "api_calls", "limit": 200, "interval": "day"}]
    )
    assert engine.allow("workspace_a", "api_calls", 200) and not engine.allow("workspace_a", "api_calls", 1)
    assert engine.explain("workspace_a", "api_calls", 1).limit_type == "usage_limit"
    assert engine.allow("workspace_b", "api_calls", 800)  # the shared org window now holds 1,000
    assert not engine.allow("workspace_b", "api_calls", 1)
    clock.advance(days=1)
    assert not engine.allow("workspace_a", "api_calls", 1)  # its own day is new, the org's month is full
    view = engine.billing_config("workspace_a")
    assert view is not None
    assert sorted((u["interval"], u["usage"], u["source"]) for u in view.controls["usage_limits"]) == [
        ("day", 0, "entity"),
        ("month", 1000, "customer"),
    ]


def test_entity_entries_override_the_customers_per_feature(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(100, mode="soft"), "chat": limit(100, mode="soft")})
    engine.create_customer("org")
    engine.add_entity("org", "ws")
    engine.update_billing_controls(
        "org", overage_allowed=[{"feature_id": "api", "enabled": False}, {"feature_id": "chat", "enabled": False}]
    )
    engine.update_billing_controls("org", entity_id="ws", overage_allowed=[{"feature_id": "api", "enabled": True}])
    assert engine.allow("ws", "api", 150)  # the entity's own entry wins
    assert not engine.allow("ws", "chat", 150)  # the customer's fills in
    with pytest.raises(InvalidArgumentError):
        engine.update_billing_controls("org", usage_limits=[{"feature_id": "api", "limit": 1, "interval": "hourly"}])
    with pytest.raises(InvalidArgumentError):
        engine.update_billing_controls("org", spend_limits=[{"feature_id": "api", "overage_limit": "lots"}])


def test_limit_reached_fires_on_the_transition_with_its_type(engines: Engines) -> None:
    engine, _ = sample(engines, "autumn_credit_system")
    engine.create_customer("c")
    engine.update_billing_controls("c", spend_limits=[{"feature_id": "api_calls", "overage_limit": 10}])
    rec = Recorder(engine)
    engine.allow("c", "api_calls", 1005)
    engine.allow("c", "api_calls", 5)  # 10 past the included amount: blocked from now on
    engine.allow("c", "api_calls", 1)
    reached = [e.payload for e in rec.events if e.name == "limit-reached"]
    assert [(r["entitlement"], r["limit_type"]) for r in reached] == [("api_calls", "spend_limit")]


# -- usage-limit windows follow the feature's reset cycle (seed 004; issue 10) ---------------------------------


def test_day_windows_of_a_rolling_meter_roll_at_the_time_of_day_the_meter_started(engines: Engines) -> None:
    # START is 14:30 UTC: the 30-day meter's period starts at 14:30, so its day windows do too (before, a plan
    # without a price fell back to UTC midnight, and this customer was allowed again at 00:00)
    engine, clock = engines.policy({"api": limit(10**6, resets=True, reset_inc="30days")})
    engine.create_customer("c")
    engine.update_billing_controls("c", usage_limits=[{"feature_id": "api", "limit": 10, "interval": "day"}])
    clock.advance(minutes=30)
    assert engine.allow("c", "api", 10) and not engine.allow("c", "api", 1)
    clock.set(datetime(2026, 3, 16, 0, 30, tzinfo=UTC))  # past UTC midnight: still the same window
    assert not engine.allow("c", "api", 1)
    assert engine.billing_config("c").controls["usage_limits"][0]["window_start"] == START  # type: ignore[union-attr]
    clock.set(datetime(2026, 3, 16, 14, 31, tzinfo=UTC))
    assert engine.allow("c", "api", 10) and not engine.allow("c", "api", 1)


def test_month_windows_of_a_monthly_9_meter_start_on_the_9th(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10**6, resets=True, reset_sch="monthly:9")})
    engine.create_customer("c")
    engine.update_billing_controls("c", usage_limits=[{"feature_id": "api", "limit": 100, "interval": "month"}])
    clock.set(datetime(2026, 4, 8, 12, tzinfo=UTC))  # window 9 March - 9 April
    assert engine.allow("c", "api", 100) and not engine.allow("c", "api", 1)
    clock.set(datetime(2026, 4, 9, 0, 1, tzinfo=UTC))  # on the calendar it is still April's window
    assert engine.allow("c", "api", 100) and not engine.allow("c", "api", 1)
    window = engine.billing_config("c").controls["usage_limits"][0]  # type: ignore[union-attr]
    assert window["window_start"] == datetime(2026, 4, 9, tzinfo=UTC) and window["usage"] == 100


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_plan_change_that_restarts_the_meter_starts_its_window_counter_afresh(
    engines: Engines, overwrite: bool
) -> None:
    # Limitr keeps restarted meters' periods aligned (`started` stays 14:30), so the window keeps its phase; a
    # restarted meter's window counts from zero, a kept meter's window goes on (before, every plan change
    # emptied every window)
    engine, clock = engines.policy(
        {"api": limit(10**6, resets=True, reset_inc="30days")},
        plans={"other": {"entitlements": {"api": limit(10**6, resets=True, reset_inc="30days")}}},
    )
    engine.create_customer("c")
    engine.update_billing_controls("c", usage_limits=[{"feature_id": "api", "limit": 10, "interval": "day"}])
    assert engine.allow("c", "api", 10)
    clock.advance(hours=5, minutes=30)  # 20:00
    assert engine.set_customer_plan("c", "other", overwrite_meters=overwrite)
    assert engine.allow("c", "api", 10) == overwrite
    assert not engine.allow("c", "api", 1)
    clock.set(datetime(2026, 3, 16, 14, 31, tzinfo=UTC))  # the next day window, from the meter's 14:30
    assert engine.allow("c", "api", 10) and not engine.allow("c", "api", 1)


def test_a_priced_plan_change_re_anchors_windows_that_follow_the_billing_cycle(engines: Engines) -> None:
    # `api` never resets, so its windows follow the billing anchor of the priced plan; upgrading moves the
    # anchor to the upgrade and the month window counts afresh from there
    engine, clock = engines.policy(
        {"api": limit(10**6)},
        plans={
            "paid": {"price": {"amount": 10}, "entitlements": {"api": limit(10**6)}},
            "paid2": {"price": {"amount": 20}, "entitlements": {"api": limit(10**6)}},
        },
    )
    engine.create_customer("c", plan="paid")
    engine.update_billing_controls("c", usage_limits=[{"feature_id": "api", "limit": 100, "interval": "month"}])
    assert engine.allow("c", "api", 100) and not engine.allow("c", "api", 1)
    clock.advance(days=10)
    assert engine.set_customer_plan("c", "paid2")
    assert engine.allow("c", "api", 100) and not engine.allow("c", "api", 1)
    window = engine.billing_config("c").controls["usage_limits"][0]  # type: ignore[union-attr]
    assert window["window_start"] == START + timedelta(days=10)


# -- limit-reached on every transition (issue 10) ---------------------------------------------------------------


def test_limit_reached_fires_again_in_every_period_that_is_exhausted(engines: Engines) -> None:
    engine, clock = sample(engines, "autumn_credit_system")  # api_calls: 1,000 included, resets monthly on the 1st
    engine.create_customer("c")
    engine.update_billing_controls("c", overage_allowed=[{"feature_id": "api_calls", "enabled": False}])
    rec = Recorder(engine)
    for month in (4, 5, 6):
        assert engine.allow("c", "api_calls", 1000) and not engine.allow("c", "api_calls", 1)
        clock.set(datetime(2026, month, 1, 0, 1, tzinfo=UTC))
    reached = [e.payload["limit_type"] for e in rec.events if e.name == "limit-reached"]
    assert len(reached) == 3, reached  # before: only March's was sent; the stale mark hid the later ones


def test_the_next_transition_names_the_control_that_binds_now(engines: Engines) -> None:
    engine, clock = sample(engines, "autumn_credit_system")
    engine.create_customer("c")
    engine.update_billing_controls(
        "c",
        spend_limits=[{"feature_id": "api_calls", "overage_limit": 10}],
        usage_limits=[{"feature_id": "api_calls", "limit": 1003, "interval": "day"}],
    )
    rec = Recorder(engine)
    assert engine.allow("c", "api_calls", 1003) and not engine.allow("c", "api_calls", 1)  # the day's window
    # the meter's first period began when the customer was created (14:30), so its day windows roll at 14:30
    clock.set(datetime(2026, 3, 16, 14, 31, tzinfo=UTC))
    assert engine.allow("c", "api_calls", 7) and not engine.allow("c", "api_calls", 1)  # 10 past the 1,000
    reached = [e.payload["limit_type"] for e in rec.events if e.name == "limit-reached"]
    assert reached == ["usage_limit", "spend_limit"]
