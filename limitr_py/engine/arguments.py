"""Checking public arguments: anything malformed is an InvalidArgumentError with a one-line message."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from limitr_py import bounds
from limitr_py.clock import as_utc
from limitr_py.diagnostics import close_match
from limitr_py.engine.caps import call_caps as build
from limitr_py.engine.records import customer_from
from limitr_py.engine.state import Cap, CustomerState
from limitr_py.errors import InvalidArgumentError
from limitr_py.schedules import Schedule, ScheduleError, parse_schedule
from limitr_py.units import Quantity, UnitError, duration_ms, parse_quantity


class _Unset:
    """The default of arguments where None means "clear": leaving one out keeps the current value."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


ID_MAX = 255
"""Longest id (customer, entity, alt id, cap, grant, hold, idempotency key) or name accepted."""
_ID_FORBIDDEN = frozenset(":{}")  # the store's key separator and Redis Cluster's hash-tag braces
TEXT_MAX = 1000
"""Longest label or type."""
DATA_MAX_DEPTH, DATA_MAX_NODES = 32, 10_000
"""Metadata and event data: nesting and size every store can hold and every reader can walk."""


NumberLike = Decimal | int | float | str
"""A number as the API takes it: an int, a Decimal, a float (read through `str`), or its text; where a credit has
units, text may carry one (`'250MB'`). Anything else is an InvalidArgumentError."""
DurationLike = timedelta | Decimal | int | float | str
"""A duration: a timedelta, milliseconds as a number, or text such as `'30days'`."""
EventArg = bool | Mapping[str, Any] | str | None
"""Limitr's `event` argument: a bool, event data (a mapping, or its JSON text), or None (events on)."""
CapArg = Cap | Mapping[str, NumberLike] | None
"""A call-scoped cap: a `Cap`, or a mapping credit → ceiling."""

S = TypeVar("S", bound=str)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}…{text[-10:]}"


_CHECKED_IDS: dict[str, None] = {}
"""Ids already found good (a pure check, so its answer can be kept); emptied when it grows past 4,096."""
_SMALL_QUANTITIES = {i: Quantity(Decimal(i)) for i in range(-1024, 1025)}
"""The quantities of small whole numbers, built once: most calls meter 1, or a small count."""


def ident(value: Any, what: str = "customer id") -> str:
    """An id or name: 1–255 printable characters (no control characters, no lone surrogates), without `:`,
    `{`, `}` and without surrounding spaces. The same alphabet on every store."""
    if type(value) is str and value in _CHECKED_IDS:
        return value
    _check_ident(value, what)
    if len(_CHECKED_IDS) >= 4096:
        _CHECKED_IDS.clear()
    _CHECKED_IDS[value] = None
    return value  # type: ignore[no-any-return]


def _check_ident(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, got `{_shown(value)}`")
    if len(value) > ID_MAX or not value.isprintable() or not _ID_FORBIDDEN.isdisjoint(value) or value.strip() != value:
        raise InvalidArgumentError(
            f"{what} must be 1–{ID_MAX} printable characters without `:`, `{{`, `}}` or "
            f"surrounding spaces, got `{_shown(value)}`"
        )


def optional_ident(value: Any, what: str) -> str | None:
    return None if value is None else ident(value, what)


def text(value: Any, what: str) -> str:
    """A label or type: printable text (no control characters or lone surrogates), at most 1,000 characters."""
    if not isinstance(value, str) or len(value) > TEXT_MAX or not value.isprintable():
        raise InvalidArgumentError(
            f"{what} must be printable text of at most {TEXT_MAX} characters, got `{_shown(value)}`"
        )
    return value


def optional_text(value: Any, what: str) -> str | None:
    return None if value is None else text(value, what)


def flag(value: Any, what: str) -> bool:
    """True or False, nothing that merely looks like one (`'no'` is truthy)."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be True or False, got `{_shown(value)}`")
    return value


def optional_flag(value: Any, what: str) -> bool | None:
    return None if value is None else flag(value, what)


def data(value: Any, what: str) -> dict[str, Any]:
    """Metadata or event data: a mapping of JSON-safe values (strings, bounded numbers, booleans, None, lists,
    mappings with string keys, datetimes), at most 32 levels and 10,000 values; returned as plain dicts/lists."""
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{what} must be a mapping, got `{type(value).__name__}`")
    count = [0]
    out: dict[str, Any] = _plain(value, what, 0, count)
    return out


def _plain(value: Any, where: str, depth: int, count: list[int]) -> Any:
    count[0] += 1
    if count[0] > DATA_MAX_NODES or depth > DATA_MAX_DEPTH:
        raise InvalidArgumentError(f"{where}: more than {DATA_MAX_NODES} values or {DATA_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(f"{where}: text with a lone surrogate cannot be stored") from None
        return value
    if isinstance(value, int | Decimal | float):
        try:
            return parse_quantity(value).amount if not isinstance(value, int) else bounds.check_int(value)
        except (UnitError, bounds.OutOfRange) as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from None
    if isinstance(value, datetime):
        return as_utc(value, where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"{where}: keys must be strings, got `{_shown(key)}`")
            out[_plain(key, where, depth + 1, count)] = _plain(item, f"{where}.{key}"[:200], depth + 1, count)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, where, depth + 1, count) for item in value]
    raise InvalidArgumentError(
        f"{where}: `{type(value).__name__}` values cannot be stored (use text, numbers, booleans, lists or mappings)"
    )


def optional_data(value: Any, what: str) -> dict[str, Any] | None:
    return None if value is None else data(value, what)


def one_of(value: Any, choices: tuple[S, ...], what: str) -> S:
    """One of `choices` (typed as its Literal), else an error naming them."""
    for choice in choices:
        if value == choice and isinstance(value, str):
            return choice
    raise InvalidArgumentError(f"{what} must be {', '.join(f'`{c}`' for c in choices)}, got {_shown(value)}")


def count(value: Any, what: str, low: int, high: int) -> int:
    """A whole number from `low` to `high` (a page size, a batch limit)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"{what} must be a whole number from {low:,} to {high:,}, got {_shown(value)}")
    return value


def fraction(value: Any, what: str) -> Decimal:
    """A number above 0 and at most 1 (a quantile)."""
    number = amount(value, what)
    if not 0 < number <= 1:
        raise InvalidArgumentError(f"{what} must be above 0 and at most 1, got `{number}`")
    return number


def quantity(value: Any, what: str = "value") -> Quantity:
    """int, Decimal, str with units, or float (through `str`); never bool, NaN or infinity."""
    if type(value) is int:
        small = _SMALL_QUANTITIES.get(value)
        if small is not None:
            return small
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


def reset_clock(reset_inc: Any, reset_sch: Any) -> tuple[timedelta | None, Schedule | None]:
    """A reset clock of its own: a period (`reset_inc`) or a schedule (`reset_sch`), at most one of them."""
    if reset_inc is not None and reset_sch is not None:
        raise InvalidArgumentError("reset_inc and reset_sch are mutually exclusive")
    period = duration(reset_inc, "reset_inc") if reset_inc is not None else None
    if reset_sch is None:
        return period, None
    try:
        return period, parse_schedule(text(reset_sch, "reset_sch"))
    except ScheduleError as exc:
        raise InvalidArgumentError(str(exc)) from None


def when(value: Any, what: str) -> datetime | None:
    return None if value is None else instant(value, what)


def instant(value: Any, what: str) -> datetime:
    """A timezone-aware datetime within the years the engine's arithmetic is exact for, in UTC."""
    out = as_utc(value, what)
    if not bounds.MIN_YEAR <= out.year <= bounds.MAX_YEAR:
        raise InvalidArgumentError(
            f"{what} must fall between the years {bounds.MIN_YEAR} and {bounds.MAX_YEAR}, got `{value!r}`"
        )
    return out


def events(event: Any) -> tuple[bool, Mapping[str, Any] | None]:
    """Limitr's `event` argument: a bool, an object (events on, it becomes `event_data`), or JSON text
    (non-empty: events on; empty: events off)."""
    if isinstance(event, bool):
        return event, None
    if isinstance(event, Mapping):
        return True, data(event, "event")
    if isinstance(event, str):
        if not event:
            return False, None
        try:
            parsed = json.loads(event, parse_float=Decimal)
        except (ValueError, RecursionError):  # not JSON (or nested past the parser): events on, no data
            return True, None
        return True, data(parsed, "event") if isinstance(parsed, dict) else None
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
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidArgumentError(f"{what} must be a list of ids, got `{_shown(value)}`")
    out = tuple(value)
    if len(out) > 1000:
        raise InvalidArgumentError(f"{what} holds more than 1,000 ids")
    for v in out:
        ident(v, f"each of {what}")
    return out


def call_caps(cap: Any, credits: Collection[str]) -> tuple[Any, ...]:
    """The `cap=` argument: None, a Cap, or a mapping credit → ceiling (each ceiling a plain number), every
    credit one of `credits` (a cap on a credit that does not exist would silently cap nothing)."""
    if cap is None:
        return ()
    if isinstance(cap, Cap):
        known(cap.credit, credits, "cap credit")
        return build(cap)
    if not isinstance(cap, Mapping) or not cap:
        raise InvalidArgumentError("cap must be a Cap or a non-empty mapping of credit to ceiling")
    return build({known(k, credits, "cap credit"): amount(v, f"cap ceiling for `{k}`") for k, v in cap.items()})


def customer_records(records: Any, plans: Collection[str]) -> list[CustomerState]:
    """`load_customers`' argument: a list of records of `customers()`, or a mapping id → record; all checked."""
    if isinstance(records, str | bytes) or not isinstance(records, Mapping | Iterable):
        raise InvalidArgumentError(
            f"records must be a list or a mapping of customer records, got `{type(records).__name__}`"
        )
    items = list(records.values()) if isinstance(records, Mapping) else list(records)
    if not all(isinstance(r, Mapping) for r in items):
        raise InvalidArgumentError("every customer record must be a mapping (as `customers()` exports them)")
    return [customer_record(r, plans) for r in items]


def period(value: Any) -> str | datetime:
    """An invoice's period: `current`, `previous`, or a datetime inside it."""
    if isinstance(value, datetime):
        return instant(value, "period")
    if value in ("current", "previous"):
        return str(value)
    raise InvalidArgumentError(f"period must be `current`, `previous` or a datetime, got `{_shown(value)}`")


def customer_record(raw: Any, plans: Collection[str]) -> CustomerState:
    """A record of `customers()` being restored: decoded, then held to the rules a call's arguments meet."""
    state = customer_from(raw)
    ident(state.id)
    for name in (*state.refs, *state.alt_ids, *state.entities):
        ident(name, "customer id")
    if state.plan:
        known(state.plan, plans, "plan")
    text(state.type, "type")
    text(state.label, "label")
    data(state.metadata, "metadata")
    return state


def known(value: Any, names: Collection[str], what: str) -> str:
    """One of `names`; anything else is an error with a "did you mean" (a typo must not silently fall back)."""
    name = ident(value, what)
    if name not in names:
        close = close_match(name, names)
        hint = (
            f"; did you mean `{close}`?"
            if close
            else (f"; use one of {', '.join(f'`{n}`' for n in sorted(names)[:10])}" if names else "")
        )
        raise InvalidArgumentError(f"unknown {what} `{name}`{hint}")
    return name


def fingerprint(*parts: Any) -> str:
    """What an idempotency key remembers of a call's arguments. Equal quantities are the same argument however
    they were spelled (`5`, `Decimal("5")`, `"5"`, `5.0`, `"5.00"`: a job queue or a JSON round trip respells
    them), so quantities are compared by value and unit."""
    return repr(tuple(_canonical(p) for p in parts))


def _canonical(part: Any) -> Any:
    if isinstance(part, Quantity):
        return ("q", _canonical(part.amount), part.unit)
    if isinstance(part, Decimal):
        return "0" if not part else str(part.normalize())
    if isinstance(part, Mapping):  # metadata: the same keys and values in any order
        return ("m", tuple(sorted((str(k), _canonical(v)) for k, v in part.items())))
    if isinstance(part, tuple | list):
        return tuple(_canonical(v) for v in part)
    if dataclasses.is_dataclass(part) and not isinstance(part, type):  # a checked spec: field by field
        return (
            type(part).__name__,
            tuple((f.name, _canonical(getattr(part, f.name))) for f in dataclasses.fields(part)),
        )
    return part
