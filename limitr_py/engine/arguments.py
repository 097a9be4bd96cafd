"""Checking public arguments: anything malformed is an InvalidArgumentError with a one-line message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from limitr_py import bounds
from limitr_py.clock import as_utc
from limitr_py.engine.caps import call_caps as build
from limitr_py.engine.state import Cap
from limitr_py.errors import InvalidArgumentError
from limitr_py.units import Quantity, UnitError, duration_ms, parse_quantity


class _Unset:
    """The default of arguments where None means "clear": leaving one out keeps the current value."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def ident(value: Any, what: str = "customer id") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, got `{value!r}`")
    return value


def quantity(value: Any, what: str = "value") -> Quantity:
    """int, Decimal, str with units, or float (through `str`); never bool, NaN or infinity."""
    if isinstance(value, bool) or value is None:
        raise InvalidArgumentError(f"{what} must be a number or a quantity such as `'250MB'`, got `{value!r}`")
    try:
        q = parse_quantity(value)
    except (UnitError, InvalidOperation, ValueError) as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None
    if not q.amount.is_finite():
        raise InvalidArgumentError(f"{what} must be finite, got `{value!r}`")
    return q


def amount(value: Any, what: str) -> Decimal:
    """A plain finite number (no unit)."""
    q = quantity(value, what)
    if q.unit is not None:
        raise InvalidArgumentError(f"{what} takes a plain number, got `{value!r}`")
    return q.amount


def optional_amount(value: Any, what: str) -> Decimal | None:
    return None if value is None else amount(value, what)


def duration(value: Any, what: str) -> timedelta:
    """A positive duration: a timedelta, a string with a time unit (`'10min'`), or milliseconds."""
    if isinstance(value, timedelta):
        out = value
    else:
        if isinstance(value, bool) or value is None:
            raise InvalidArgumentError(f"{what} must be a duration such as `'10min'`, got `{value!r}`")
        try:
            ms = duration_ms(value)
        except (UnitError, InvalidOperation, ValueError) as exc:
            raise InvalidArgumentError(f"{what}: {exc}") from None
        out = timedelta(microseconds=int(ms * 1000))
    if out <= timedelta(0):
        raise InvalidArgumentError(f"{what} must be positive, got `{value!r}`")
    if out > bounds.MAX_DURATION:
        raise InvalidArgumentError(f"{what} must be at most 100 years, got `{value!r}`")
    return out


def when(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    out = as_utc(value, what)
    if not bounds.MIN_YEAR <= out.year <= bounds.MAX_YEAR:
        raise InvalidArgumentError(f"{what} must fall between the years {bounds.MIN_YEAR} and {bounds.MAX_YEAR}, "
                                   f"got `{value!r}`")
    return out


def events(event: Any) -> tuple[bool, Mapping[str, Any] | None]:
    """Limitr's `event` argument: a bool, an object (events on, it becomes `event_data`), or JSON text
    (non-empty: events on; empty: events off)."""
    if isinstance(event, bool):
        return event, None
    if isinstance(event, Mapping):
        return True, dict(event)
    if isinstance(event, str):
        if not event:
            return False, None
        try:
            data = json.loads(event, parse_float=Decimal)
        except ValueError:
            return True, None
        return True, data if isinstance(data, dict) else None
    if event is None:
        return True, None
    raise InvalidArgumentError(f"event must be a bool, a mapping or a JSON string, got `{type(event).__name__}`")


def context(value: Any) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise InvalidArgumentError(f"context must be a mapping, got `{type(value).__name__}`")


def names(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgumentError(f"{what} must be a list of non-empty strings, got `{value!r}`")
    return tuple(value)


def call_caps(cap: Any) -> tuple[Any, ...]:
    """The `cap=` argument: None, a Cap, or a mapping credit → ceiling (each ceiling a plain number)."""
    if cap is None:
        return ()
    if isinstance(cap, Cap):
        return build(cap)
    if not isinstance(cap, Mapping) or not cap:
        raise InvalidArgumentError("cap must be a Cap or a non-empty mapping of credit to ceiling")
    return build({ident(k, "cap credit"): amount(v, f"cap ceiling for `{k}`") for k, v in cap.items()})
