"""Customers: plans through refs, alt ids, plan changes, overrides, export/import, idempotency keys."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from limitr_py import IdempotencyConflictError, InvalidArgumentError, Limitr
from tests.engine_helpers import Engines, Recorder, limit

PLANS = {
    "pro": {"entitlements": {"api": limit(100, resets=True, reset_inc="30days"), "export": {}, "storage": limit(50)}}
}


def test_plan_resolution_named_then_refs_then_default(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)}, plans=PLANS)
    assert engine.create_customer("org", plan="pro", type="org").plan == "pro"  # type: ignore[union-attr]
    member = engine.create_customer("m", refs=["org"])
    assert member is not None and member.plan == ""  # inherits
    assert engine.allow("m", "export") and engine.limit("m", "api") == 100
    with pytest.raises(InvalidArgumentError, match="did you mean `pro`"):  # a typo never falls back silently
        engine.create_customer("x", plan="prp")
    assert engine.customer("x") is None


def test_no_resolvable_plan_creates_nothing() -> None:
    engine = Limitr.new({"policy": {"credits": {"unit": {}}, "plans": {"p": {"entitlements": {}}}}})
    assert engine.create_customer("u") is None and engine.customer("u") is None


def test_meters_start_at_creation_and_an_existing_id_is_updated_without_new_meters(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_inc="1day")})
    rec = Recorder(engine)
    engine.create_customer("u", label="First")
    started = engine.customer_state("u").meters["api"].started  # type: ignore[union-attr]
    assert started == clock.now()
    clock.advance(hours=5)
    updated = engine.create_customer("u", label="Renamed", metadata={"tier": "gold"})
    assert updated is not None and updated.label == "Renamed" and updated.metadata == {"tier": "gold"}
    assert engine.customer_state("u").meters["api"].started == started  # type: ignore[union-attr]
    assert rec.names() == ["customer-set", "customer-set"]


def test_alt_ids_resolve_everywhere_and_cannot_be_taken_twice(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u", alt_ids=["stripe_1"])
    assert engine.allow("stripe_1", "api", 4) and engine.value("u", "api") == 4
    assert engine.customer("stripe_1").id == "u"  # type: ignore[union-attr]
    engine.create_customer("v")
    assert not engine.set_alt_customer_id("v", "stripe_1")
    assert engine.set_alt_customer_id("v", "email-v@x")
    assert engine.value("email-v@x", "api") == 0
    assert engine.delete_alt_customer_id("email-v@x") and engine.customer("email-v@x") is None
    with pytest.raises(InvalidArgumentError):
        engine.create_customer("w", alt_ids=["stripe_1"])
    assert engine.customer("w") is None
    rec = Recorder(engine)
    assert engine.delete_customer("stripe_1")
    assert engine.customer("u") is None and engine.customer("stripe_1") is None
    assert rec.names() == ["customer-removed"] and not engine.delete_customer("u")


def test_plan_change_keeps_usage_and_aligns_new_meters_to_the_current_period(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_inc="30days")}, plans=PLANS)
    engine.create_customer("u")
    engine.allow("u", "api", 8)
    clock.advance(days=3)
    rec = Recorder(engine)
    assert engine.set_customer_plan("u", "pro")
    assert engine.value("u", "api") == 8 and engine.remaining("u", "api") == 92  # usage kept, new limit
    state = engine.customer_state("u")
    assert state is not None and state.meters["storage"].started == state.meters["api"].started
    assert rec.names() == ["customer-set", "customer-plan-changed"]
    assert rec.events[1].payload == {"previous_plan": "main", "new_plan": "pro", "customer": "u"}
    assert not engine.set_customer_plan("u", "pro") and not engine.set_customer_plan("u", "gold")


def test_plan_change_with_overwrite_starts_meters_again(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)}, plans=PLANS)
    engine.create_customer("u")
    engine.allow("u", "api", 8)
    assert engine.set_customer_plan("u", "pro", overwrite_meters=True)
    assert engine.value("u", "api") == 0


def test_override_replaces_the_plan_limit_until_it_expires(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    made = engine.create_customer_override("u", "api", value=20, expires=clock.now() + timedelta(days=1))
    assert made is not None and made.value == 20 and made.credit == "unit"
    assert engine.allow("u", "api", 15) and engine.limit("u", "api") == 20
    clock.advance(days=1, seconds=1)
    assert engine.limit("u", "api") == 10 and not engine.allow("u", "api", 1)
    assert engine.customer_state("u").overrides == {}  # type: ignore[union-attr]  # the call removed it
    assert engine.create_customer_override("u", "api", mode="soft") is not None
    assert engine.allow("u", "api", 100)
    assert engine.remove_customer_override("u", "api") and not engine.remove_customer_override("u", "api")
    assert engine.create_customer_override("u", "nope", value=1) is None
    assert engine.create_customer_override("u", "api", credit="missing") is None
    with pytest.raises(InvalidArgumentError):
        engine.create_customer_override("u", "api", reset_inc="1day", reset_sch="monthly:1")
    with pytest.raises(InvalidArgumentError):
        engine.create_customer_override("u", "api", mode="sometimes")


def test_state_exports_and_loads_into_another_engine_unchanged(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_inc="1day"), "chat": limit(5, mode="soft")})
    engine.create_customer("org", type="org", metadata={"name": "Acme"})
    engine.create_customer("u", refs=["org"], alt_ids=["a1"])
    engine.allow("u", "api", D("3.25"))
    engine.allow("u", "chat", 9)
    engine.create_customer_override("u", "api", value=12)
    records = engine.customers()
    other, _ = engines.policy(
        {"api": limit(10, resets=True, reset_inc="1day"), "chat": limit(5, mode="soft")}, start=clock.now()
    )
    assert other.load_customers(records) == 2
    assert sorted(other.customers(), key=lambda r: r["id"]) == sorted(records, key=lambda r: r["id"])
    assert other.value("a1", "api") == D("3.25") and other.limit("u", "api") == 12
    assert other.remaining("u", "chat") == -4
    with pytest.raises(InvalidArgumentError):
        other.set_customer({"id": "bad", "meters": {"api": {"credit": "unit", "value": "lots"}}})
    assert other.customer("bad") is None


def test_idempotency_key_meters_once_and_replays_the_first_answer(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    assert engine.allow("u", "api", 6, idempotency_key="req-1")
    assert engine.allow("u", "api", 6, idempotency_key="req-1")  # a retry: same answer, nothing metered
    assert engine.value("u", "api") == 6
    assert not engine.allow("u", "api", 6, idempotency_key="req-2")
    engine.allow("u", "api", -6)
    assert not engine.allow("u", "api", 6, idempotency_key="req-2")  # the first answer, though room appeared
    assert engine.value("u", "api") == 0
    with pytest.raises(IdempotencyConflictError):
        engine.allow("u", "api", 5, idempotency_key="req-1")
    assert engine.track("u", "api", 20, idempotency_key="t-1") and engine.track("u", "api", 20, idempotency_key="t-1")
    assert engine.value("u", "api") == 20


def test_allow_explained_with_an_idempotency_key_replays_the_first_decision(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    first = engine.allow_explained("u", "api", 7, idempotency_key="x-1")
    # headroom is what the limit took before the call: 10
    assert first.allowed and first.gate == "limit" and first.headroom == 10 and first.gates  # decided: gates listed
    again = engine.allow_explained("u", "api", 7, idempotency_key="x-1")
    assert (again.allowed, again.gate, again.limit_type, again.headroom, again.gates) == (
        True,
        "limit",
        "included",
        10,
        (),
    )
    assert engine.value("u", "api") == 7  # metered once
    denied = engine.allow_explained("u", "api", 7, idempotency_key="x-2")
    replayed = engine.allow_explained("u", "api", 7, idempotency_key="x-2")
    assert (denied.allowed, denied.limit_type, denied.headroom) == (replayed.allowed, replayed.limit_type, 3)
    with pytest.raises(IdempotencyConflictError):
        engine.allow_explained("u", "api", 1, idempotency_key="x-1")
    with pytest.raises(IdempotencyConflictError):  # the same key for allow and allow_explained: two calls
        engine.allow("u", "api", 7, idempotency_key="x-1")


def test_reserve_and_release_with_an_idempotency_key_act_once(engines: Engines) -> None:
    engine, _ = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    hold = engine.reserve("u", "api", 6, idempotency_key="r-1")
    assert hold is not None and engine.reserve("u", "api", 6, idempotency_key="r-1") == hold
    assert engine.held("u", "api") == 6  # one hold of 6, not two (which would not fit under 10 anyway)
    assert engine.release("u", "api", hold, idempotency_key="l-1")
    assert engine.release("u", "api", hold, idempotency_key="l-1")  # the first answer, though the hold is gone
    assert not engine.release("u", "api", hold)  # a new call: there is no such hold
    assert engine.held("u", "api") == 0
    with pytest.raises(IdempotencyConflictError):
        engine.reserve("u", "api", 5, idempotency_key="r-1")


def test_idempotency_keys_are_forgotten_after_a_day(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10)})
    engine.create_customer("u")
    assert engine.allow("u", "api", 2, idempotency_key="k")
    clock.advance(days=1, seconds=1)
    engine.allow("u", "api", 1)  # any commit lets the store drop what expired
    if not engine.store.url.startswith("redis"):  # Redis drops them by its own TTL, in real time
        assert not any(key.startswith("idempotency:") for key, _ in engine.store.scan("idempotency:"))
    assert engine.allow("u", "api", 2, idempotency_key="k")  # a new call now
    assert engine.value("u", "api") == 5
