"""Notification conditions: a safe expression language over an event payload (SPEC §2.4)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from limitr_py.compile.conditions import compile_expression
from limitr_py.expressions import ExpressionError

PAYLOAD = {
    "name": "meter-overage",
    "entitlement": "chat",
    "remaining": Decimal(50),
    "overage_price": Decimal("1.25"),
    "meter": {"value": Decimal(150), "limit": Decimal(100)},
    "event_data": {"model": "sonnet"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("remaining < 100", True),
        ("remaining < 10", False),
        ("overage_price > 1 and entitlement == 'chat'", True),
        ("meter.value / meter.limit * 100 >= 150", True),
        ("not (remaining > 10)", False),
        ("entitlement in ['chat', 'export']", True),
        ("entitlement not in ['chat']", False),
        ('event_data.model == "sonnet"', True),
        ("(1 + 2) * 3 == 9", True),
        ("-remaining < 0", True),
        ("missing.field > 3", False),
        ("missing == null", True),
        ("remaining % 7 == 1", True),
        ("entitlement > 3", False),
    ],  # mismatched types compare false instead of raising
)
def test_conditions(text: str, expected: bool) -> None:
    assert compile_expression(text).matches(PAYLOAD) is expected


@pytest.mark.parametrize(
    "text", ["remaining <", "foo(1)", "a.b[0]", "__import__('os')", "x = 1", "a.__class__()", "1GB > 2"]
)
def test_code_and_garbage_do_not_compile(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(text)


def test_division_by_zero_is_a_non_match() -> None:
    assert compile_expression("remaining / 0 > 1").matches(PAYLOAD) is False


def test_paths_never_reach_python_attributes() -> None:
    class Secret:
        token = "s3cret"

    assert compile_expression("obj.token == 's3cret'").matches({"obj": Secret()}) is False


def test_one_list_of_event_names_serves_on_notifications_and_the_type_checker() -> None:
    # before: engine/events.py kept its own list, with a gate name (`cap-after-grants`) that is never sent
    from typing import get_args

    from limitr_py import InvalidArgumentError, Limitr
    from limitr_py.engine.events import EVENT_NAMES as accepted_by_on
    from limitr_py.event_names import EVENT_NAMES, EventName

    assert set(get_args(EventName)) == set(EVENT_NAMES) == set(accepted_by_on)
    engine = Limitr.new({"policy": {"credits": {"c": {}}, "plans": {}}})
    with pytest.raises(InvalidArgumentError, match="no event is named `cap-after-grants`"):
        engine.on("cap-after-grants", print)
