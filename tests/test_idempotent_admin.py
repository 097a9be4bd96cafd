"""Idempotency keys on the calls a retry must not repeat: grants, top-ups, caps added without an id, cap resets
and removals, on every store. A retry with the key changes nothing more and answers the first call's result
(the same type: a Grant, a Cap); the key with other arguments is refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from limitr_py import Cap, Grant, IdempotencyConflictError, InvalidArgumentError
from tests.engine_helpers import Engines

DOC: dict[str, Any] = {
    "policy": {
        "credits": {"token": {"price": {"amount": 0.01}}},
        "plans": {
            "free": {
                "default": True,
                "entitlements": {"tokens": {"limit": {"credit": "token", "mode": "soft", "value": 100}}},
                "topups": {"pack": {"credit": "token", "value": 1000, "price": {"amount": 5}}},
            }
        },
    }
}


def test_a_grant_retried_with_its_key_is_granted_once(engines: Engines) -> None:
    engine, _ = engines.engine_on(DOC)
    engine.create_customer("u1")
    first = engine.grant("u1", "token", "250", metadata={"reason": "promo", "n": 1}, idempotency_key="g-1")
    # the same call again, its number and metadata spelt differently: a retry
    again = engine.grant("u1", "token", Decimal("250.00"), metadata={"n": 1, "reason": "promo"}, idempotency_key="g-1")
    assert isinstance(first, Grant) and again == first
    assert [g.id for g in engine.grants("u1")] == [first.id]
    with pytest.raises(IdempotencyConflictError):
        engine.grant("u1", "token", 300, idempotency_key="g-1")
    assert len(engine.grants("u1")) == 1
    other = engine.grant("u1", "token", "250", idempotency_key="g-2")  # a new key is a new grant
    assert other is not None and other.id != first.id and len(engine.grants("u1")) == 2


def test_a_top_up_retried_with_its_key_is_bought_once(engines: Engines) -> None:
    engine, _ = engines.engine_on(DOC)
    engine.create_customer("u1")
    assert engine.apply_customer_topup("u1", "pack", idempotency_key="order-7")
    assert engine.apply_customer_topup("u1", "pack", idempotency_key="order-7")
    assert engine.credit_remaining("u1", "token") == 1000  # one pack of 1,000, not two
    assert engine.apply_customer_topup("u1", "pack")  # no key: a purchase every time
    assert engine.credit_remaining("u1", "token") == 2000


def test_a_cap_added_without_an_id_and_retried_with_its_key_is_added_once(engines: Engines) -> None:
    engine, _ = engines.engine_on(DOC)
    engine.create_customer("u1")
    first = engine.add_customer_cap("u1", "2.5", idempotency_key="cap-1")
    again = engine.add_customer_cap("u1", 2.5, idempotency_key="cap-1")
    assert isinstance(first, Cap) and again == first
    state = engine.customer_state("u1")
    assert state is not None and list(state.caps) == [first.id]
    with pytest.raises(IdempotencyConflictError):
        engine.add_customer_cap("u1", 3, idempotency_key="cap-1")


def test_a_cap_reset_retried_with_its_key_does_not_forget_what_was_spent_since(engines: Engines) -> None:
    engine, _ = engines.engine_on(DOC)
    engine.create_customer("u1")
    engine.add_customer_cap("u1", 10, cap_id="budget")
    assert engine.allow("u1", "tokens", 150)  # 50 over at 0.01: 0.50 spent
    assert engine.reset_customer_cap("u1", "budget", idempotency_key="reset-1")
    assert engine.allow("u1", "tokens", 20)  # 20 more over: 0.20 spent since the reset
    assert engine.reset_customer_cap("u1", "budget", idempotency_key="reset-1")  # the retry: answered, not done
    cap = engine.customer_cap("u1", "budget")
    assert cap is not None and cap.meter_value == Decimal("0.2")
    assert engine.remove_customer_cap("u1", "budget", idempotency_key="rm-1")
    assert engine.remove_customer_cap("u1", "budget", idempotency_key="rm-1")  # the first answer, True
    assert not engine.remove_customer_cap("u1", "budget")  # without the key: it is gone


def test_an_answer_recorded_under_a_key_is_kept_for_a_day_and_recorded_once(engines: Engines) -> None:
    """What the HTTP service keeps for an `Idempotency-Key` on a call that is more than one engine call."""
    engine, clock = engines.engine_on(DOC)
    key = "ab" * 32
    assert engine.recorded_answer(key) is None
    assert engine.record_answer(key, {"status": 201, "body": '{"id": "u1"}'})
    assert not engine.record_answer(key, {"status": 500, "body": ""})  # the first answer stands
    assert engine.recorded_answer(key) == {"status": 201, "body": '{"id": "u1"}'}
    clock.advance(timedelta(days=1, seconds=1))
    assert engine.recorded_answer(key) is None  # forgotten after a day, and a new answer can be recorded
    assert engine.record_answer(key, {"status": 204, "body": ""})
    assert engine.recorded_answer(key) == {"status": 204, "body": ""}
    for wrong in ("short", "AB" * 32, "g" * 32, 7):
        with pytest.raises(InvalidArgumentError):
            engine.record_answer(wrong, {"status": 200})  # type: ignore[arg-type]
