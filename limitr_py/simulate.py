"""Replaying timestamped usage against a policy (`limitr simulate`): how a team tries a pricing change on last
month's usage before shipping it.

Events are JSON lines, in time order:
    {"at": "2026-03-01T10:00:00Z", "customer": "c1", "entitlement": "api", "value": 3}        # allow
    {"at": "...", "customer": "c1", "entitlement": "api", "value": 3, "track": true}          # usage that happened
    {"at": "...", "create_customer": {"id": "c1", "plan": "pro"}}                            # any engine call below
    {"at": "...", "update_billing_controls": {"id": "c1", "usage_limits": [...]}}
A ManualClock is set to each event's time before it runs, so resets, windows and expiries happen exactly when
they would have. Nothing here prints; the CLI renders the summary.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py import bounds, iso_time
from limitr_py.clock import ManualClock
from limitr_py.errors import InvalidArgumentError, LimitrError
from limitr_py.limitr import Limitr
from limitr_py.units import format_decimal

CALLS = (
    "create_customer",
    "set_customer_plan",
    "update_billing_controls",
    "set_feature_config",
    "set_overage_limit",
    "add_customer_cap",
    "grant",
    "apply_customer_topup",
    "add_entity",
    "remove_entity",
    "create_customer_override",
    "delete_customer",
    "ensure_plan_subscription",
)
"""Engine calls an event line may make besides usage (their keyword arguments, with `id` first)."""

TIMES = frozenset({"expires_on", "expires"})
"""Arguments of those calls that are times: written in the events file as ISO 8601 text with a zone."""


class SimulationError(LimitrError):
    """An events file that cannot be replayed: the message names the line."""


@dataclass(slots=True)
class Summary:
    events: int = 0
    allowed: int = 0
    denied: int = 0
    denials: Counter[str] = field(default_factory=Counter)  # by limit type (or gate)
    created: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    customers: list[str] = field(default_factory=list)


def _integer(text: str) -> int | Decimal:
    # `int` refuses texts past 4,300 digits; Decimal reads any length, and the engine refuses it as out of range
    return int(text) if len(text) <= 40 else Decimal(text)


def read_events(lines: Iterable[str]) -> Iterator[tuple[int, datetime, dict[str, Any]]]:
    """(line number, time, event) for each non-blank line; a malformed line raises SimulationError."""
    last: datetime | None = None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            event = json.loads(text, parse_float=Decimal, parse_int=_integer)
        except ValueError as exc:
            raise SimulationError(f"line {number}: not JSON ({exc})") from None
        except RecursionError:
            raise SimulationError(f"line {number}: nested too deeply") from None
        if not isinstance(event, dict) or not isinstance(event.get("at"), str):
            raise SimulationError(f"line {number}: each event is an object with an `at` time")
        try:
            at = iso_time.parse(event["at"])
        except iso_time.NotATime as exc:
            what = "needs a time zone (e.g. `Z`)" if exc.no_zone else "is not an ISO 8601 time"
            raise SimulationError(f"line {number}: `at` {what}: `{event['at']}`") from None
        if not bounds.MIN_YEAR <= at.year <= bounds.MAX_YEAR:  # the engine's clock range (bounds.py)
            raise SimulationError(
                f"line {number}: `at` must fall in the years {bounds.MIN_YEAR}-{bounds.MAX_YEAR}: `{event['at']}`"
            )
        if last is not None and at < last:
            raise SimulationError(
                f"line {number}: events must be in time order (`{event['at']}` is earlier than the line before)"
            )
        last = at
        yield number, at, event


def replay(
    build: Callable[[ManualClock], Limitr],
    lines: Iterable[str],
    *,
    create_customers: bool = True,
    progress: Callable[[int], None] | None = None,
    observe: Callable[[Limitr, datetime, str, str, bool], None] | None = None,
) -> tuple[Limitr, Summary]:
    """Run every event; unknown customers are created on the default plan unless `create_customers` is off.
    `observe(engine, at, customer, entitlement, allowed)` is called after each metered event (the chart)."""
    engine: Limitr | None = None
    clock: ManualClock | None = None
    summary = Summary()
    known: set[str] = set()
    for number, at, event in read_events(lines):
        if engine is None or clock is None:
            clock = ManualClock(at)
            engine = build(clock)
        clock.set(at)
        summary.events += 1
        try:
            metered = _apply(engine, event, summary, known, create_customers)
        except (InvalidArgumentError, TypeError) as exc:
            raise SimulationError(f"line {number}: {exc}") from None
        if observe is not None and metered is not None:
            observe(engine, at, *metered)
        if progress is not None:
            progress(summary.events)
    if engine is None:
        raise SimulationError("no events to replay")
    return engine, summary


def _apply(
    engine: Limitr, event: dict[str, Any], summary: Summary, known: set[str], create: bool
) -> tuple[str, str, bool] | None:
    """Run one event: an engine call (None), or a metered call ((customer, entitlement, allowed))."""
    calls = [name for name in CALLS if name in event]
    if calls:
        name = calls[0]
        if not isinstance(event[name], dict):
            raise InvalidArgumentError(f"`{name}` takes an object of its arguments, got `{event[name]!r:.60}`")
        kwargs = {k: _time(k, v) if k in TIMES else v for k, v in event[name].items()}
        ident = kwargs.pop("id", None)
        getattr(engine, name)(ident, **kwargs)
        summary.calls[name] += 1
        if name == "create_customer" and ident not in known:
            known.add(ident)
            summary.customers.append(ident)
        return None
    customer, entitlement = event.get("customer"), event.get("entitlement")
    if not isinstance(customer, str) or not isinstance(entitlement, str):
        raise InvalidArgumentError(f"an event needs `customer` and `entitlement`, or one of: {', '.join(CALLS)}")
    if customer not in known:
        known.add(customer)
        if create and engine.customer(customer) is None and engine.create_customer(customer) is not None:
            summary.created += 1
        summary.customers.append(customer)
    decision = engine.allow_explained(
        customer,
        entitlement,
        event.get("value", 1),
        force=bool(event.get("track")),
        event=event.get("event_data", True),
        gates=False,  # the gate and limit type are counted; listing every gate would be work for nobody
    )
    if decision.allowed:
        summary.allowed += 1
    else:
        summary.denied += 1
        summary.denials[decision.limit_type or decision.gate] += 1
    return customer, entitlement, decision.allowed


def _time(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value  # None, or a mistake the engine names
    try:
        return iso_time.parse(value)
    except iso_time.NotATime as exc:
        raise InvalidArgumentError(f"`{name}` {exc}, e.g. 2026-04-01T00:00:00Z: `{value}`") from None


def report(engine: Limitr, summary: Summary) -> dict[str, Any]:
    """The whole outcome as JSON-safe data: decisions, denials, final meters and caps, invoices."""
    customers: dict[str, Any] = {}
    for ident in summary.customers:
        state = engine.customer_state(ident)
        if state is None:
            continue
        meters = {}
        for name in state.meters:
            meters[name] = {"value": _num(engine.value(ident, name)), "limit": _num(engine.limit(ident, name))}
        caps = {
            cap_id: {"meter_value": _num(cap.meter_value), "ceiling": _num(cap.value)}
            for cap_id in state.caps
            if (cap := engine.customer_cap(ident, cap_id)) is not None
        }
        invoices = {}
        for period in ("previous", "current"):
            invoice = engine.invoice(ident, period=period)
            if invoice is not None and invoice.lines:
                invoices[period] = invoice.to_dict()
        customers[ident] = {"plan": engine.customer_plan(ident), "meters": meters, "caps": caps, "invoices": invoices}
    return {
        "events": summary.events,
        "allowed": summary.allowed,
        "denied": summary.denied,
        "denials": dict(sorted(summary.denials.items())),
        "created_customers": summary.created,
        "calls": dict(sorted(summary.calls.items())),
        "customers": customers,
    }


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)
