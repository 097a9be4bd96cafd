"""Customer state ↔ plain JSON-safe records (`customers()`, `set_customer`, `load_customers`, durable stores).

Numbers are written as strings so no amount ever passes through a float; times are ISO 8601 UTC.
A record that does not have the expected shape raises InvalidArgumentError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from limitr_py.compile.graph import Limit
from limitr_py.engine.state import CustomerState, Hold, MeterState, Override
from limitr_py.errors import InvalidArgumentError
from limitr_py.schedules import ScheduleError, parse_schedule
from limitr_py.units import format_decimal


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def meter_record(m: MeterState) -> dict[str, Any]:
    return {"credit": m.credit, "started": _time(m.started), "value": _num(m.value), "overhead": _num(m.overhead),
            "history": [[_time(t), _num(d)] for t, d in m.history], "ewma_rate": _num(m.ewma_rate),
            "governor_tokens": _num(m.governor_tokens), "governor_last_refill": _time(m.governor_last_refill),
            "holds": {k: {"value": _num(h.value), "overhead": _num(h.overhead), "expires": _time(h.expires),
                          "basis": _num(h.basis), "segment": h.segment} for k, h in m.holds.items()}}


def limit_record(limit: Limit) -> dict[str, Any]:
    return {"credit": limit.credit, "mode": limit.mode, "value": _num(limit.value),
            "increment": _num(limit.increment), "resets": limit.resets,
            "reset_inc": None if limit.reset_inc is None else _num(Decimal(limit.reset_inc // timedelta(microseconds=1)) / 1000),
            "reset_sch": None if limit.reset_sch is None else limit.reset_sch.text}


def customer_record(c: CustomerState) -> dict[str, Any]:
    return {"id": c.id, "plan": c.plan, "type": c.type, "label": c.label, "refs": list(c.refs),
            "alt_ids": list(c.alt_ids), "metadata": dict(c.metadata), "created": _time(c.created),
            "meters": {k: meter_record(m) for k, m in c.meters.items()},
            "overrides": {k: {**limit_record(o.limit), "expires": _time(o.expires)} for k, o in c.overrides.items()}}


class _Reader:
    """Field access with errors that say which field of which record is wrong."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"customer record {self.where}: `{field}` {why}")

    def num(self, raw: Mapping[str, Any], key: str, default: Decimal | None = None) -> Decimal | None:
        value = raw.get(key)
        if value is None:
            return default
        try:
            out = Decimal(str(value)) if not isinstance(value, bool) else None
        except InvalidOperation:
            out = None
        if out is None or not out.is_finite():
            raise self.fail(key, f"is not a number: `{value}`")
        return out

    def time(self, raw: Mapping[str, Any], key: str) -> datetime | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise self.fail(key, f"is not an ISO 8601 time: `{value}`") from None
        if when.tzinfo is None:
            raise self.fail(key, f"has no time zone: `{value}`")
        return when

    def obj(self, raw: Any, key: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.fail(key, "must be an object")
        return raw


def meter_from(raw: Mapping[str, Any], r: _Reader) -> MeterState:
    holds = {}
    for key, h in r.obj(raw.get("holds"), "holds").items():
        expires = r.time(h, "expires")
        if expires is None:
            raise r.fail("holds.expires", "is required")
        holds[key] = Hold(r.num(h, "value", Decimal(0)), r.num(h, "overhead", Decimal(0)),  # type: ignore[arg-type]
                          expires, r.num(h, "basis"), h.get("segment"))
    history = []
    for entry in raw.get("history") or []:
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise r.fail("history", "entries must be [time, delta] pairs")
        when = r.time({"t": entry[0]}, "t")
        history.append((when, r.num({"d": entry[1]}, "d", Decimal(0))))
    credit = raw.get("credit")
    if not isinstance(credit, str) or not credit:
        raise r.fail("meters.credit", "must be a credit name")
    return MeterState(credit, r.time(raw, "started"), r.num(raw, "value", Decimal(0)),  # type: ignore[arg-type]
                      r.num(raw, "overhead", Decimal(0)), tuple(history), r.num(raw, "ewma_rate"),  # type: ignore[arg-type]
                      r.num(raw, "governor_tokens"), r.time(raw, "governor_last_refill"), holds)


def limit_from(raw: Mapping[str, Any], r: _Reader) -> Limit:
    inc = r.num(raw, "reset_inc")
    sch = raw.get("reset_sch")
    try:
        schedule = parse_schedule(sch) if sch else None
    except ScheduleError as exc:
        raise r.fail("reset_sch", str(exc)) from None
    return Limit(credit=str(raw.get("credit", "")), mode=str(raw.get("mode", "hard")),
                 value=r.num(raw, "value", Decimal(0)), increment=r.num(raw, "increment", Decimal(1)),  # type: ignore[arg-type]
                 resets=bool(raw.get("resets", False)),
                 reset_inc=None if inc is None else timedelta(milliseconds=int(inc)), reset_sch=schedule)


def customer_from(raw: Any) -> CustomerState:
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError("customer record must be an object")
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        raise InvalidArgumentError("customer record: `id` must be a non-empty string")
    r = _Reader(f"`{ident}`")
    overrides = {}
    for name, o in r.obj(raw.get("overrides"), "overrides").items():
        overrides[name] = Override(limit_from(o, r), r.time(o, "expires"))
    return CustomerState(
        id=ident, plan=str(raw.get("plan") or ""), type=str(raw.get("type") or "user"),
        label=str(raw.get("label") or "User"), refs=tuple(str(x) for x in raw.get("refs") or ()),
        alt_ids=tuple(str(x) for x in raw.get("alt_ids") or ()), metadata=dict(r.obj(raw.get("metadata"), "metadata")),
        created=r.time(raw, "created"),
        meters={k: meter_from(r.obj(m, f"meters.{k}"), r) for k, m in r.obj(raw.get("meters"), "meters").items()},
        overrides=overrides)
