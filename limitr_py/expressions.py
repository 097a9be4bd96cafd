"""The notification condition language (SPEC §2.4) at run time: compiled conditions and what they evaluate with.

Parsing lives in `limitr_py/compile/conditions.py` (lark, grammar/stof.lark), so the engine, which only evaluates,
never imports a parser.

Safe by construction: the only names are dotted paths into the event payload (plus `name`, the event name);
there are no calls, no attribute access on Python objects and no indexing. A path that is missing evaluates to
None, and comparing None or mismatched types is simply false, so a condition never raises at run time.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Evaluator = Callable[[Mapping[str, Any]], Any]

CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


class ExpressionError(ValueError):
    """An expression that does not parse; `column` is 1-based within the expression text."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled condition: `matches(payload)` is always a bool."""

    text: str
    evaluate: Evaluator

    def matches(self, payload: Mapping[str, Any]) -> bool:
        try:
            return bool(self.evaluate(payload))
        except (TypeError, ArithmeticError, ValueError):
            return False


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def lookup(payload: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    value: Any = payload
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return _number(value)


def contains(container: Any, item: Any) -> bool:
    return isinstance(container, list | str | Mapping) and item in container
