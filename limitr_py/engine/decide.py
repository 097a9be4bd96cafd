"""The pure decision core: (policy, snapshot, request, now) → (decision, changed state, events).

A transcription of Limitr 0.7's `allow()` (reference/limitr.md §3.2) and `check()` (§3.3): resolve → period
reset → governor → limit → commit. No I/O and no clock: the engine hands in the snapshot and `now`, and commits
what comes back. Records in the snapshot are never changed; changed customers are copies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import CompiledPolicy, Credit, Limit, Plan
from limitr_py.engine import meters
from limitr_py.engine.exchange import to_runes
from limitr_py.engine.resolve import limit_for, plan_for, resolve_customer, scope_owner
from limitr_py.engine.state import ZERO, CustomerState, MeterState
from limitr_py.engine.values import Decision, Gate
from limitr_py.errors import InvalidArgumentError
from limitr_py.units import Quantity, UnitError, convert

OverheadFn = Callable[[Decimal, Mapping[str, Any] | None], Any]
RawEvent = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Request:
    customer: str
    entitlement: str
    value: Quantity | None = None  # None with `step`
    step: int = 0  # ±1: use the limit's `increment` (increment / decrement)
    send_events: bool = True
    event_data: Mapping[str, Any] | None = None
    overhead: Decimal | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The customers a call can reach (by id) and the alt-id aliases it may need."""

    customers: Mapping[str, CustomerState]
    aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    allowed: bool
    decision: Decision
    changed: dict[str, CustomerState] = field(default_factory=dict)
    events: list[RawEvent] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    """Everything resolved about one call; built once, read by every gate."""

    caller: CustomerState
    owner: CustomerState
    plan: Plan
    entitlement: str
    limit: Limit
    credit: Credit
    meter: MeterState | None
    value: Decimal
    overhead: Decimal
    meter_owned: bool = False


def quantity_in(credit: Credit, quantity: Quantity) -> Decimal:
    """A call's value in the credit's unit; a unit that does not fit is the caller's mistake."""
    try:
        return convert(quantity, credit.units)
    except UnitError as exc:
        raise InvalidArgumentError(f"value for credit `{credit.name}`: {exc}") from None


def credit_overhead(credit: Credit, units: Decimal, context: Mapping[str, Any] | None,
                    fns: Mapping[str, OverheadFn]) -> Decimal:
    """Provider cost (runes) of `units`: a registered callable, else the declarative rate table, else
    `units × overhead_cost`. A callable that fails or returns a non-number falls back to the last rule."""
    fallback = units * credit.overhead_cost
    fn = fns.get(credit.name)
    if fn is not None:
        try:
            result = fn(units, context)
        except Exception:  # noqa: BLE001 - Limitr logs and falls back; a broken cost hook must not deny calls
            return fallback
        if isinstance(result, bool) or not isinstance(result, int | float | Decimal):
            return fallback
        return Decimal(str(result)) if isinstance(result, float) else Decimal(result)
    table = credit.overhead
    if table is None or context is None:
        return fallback
    row = table.rates.get(str(context.get(table.by))) if table.by else next(iter(table.rates.values()), None)
    if row is None:
        return fallback
    total = ZERO
    for name, rate in row.items():
        amount = context.get(name)
        if isinstance(amount, int | Decimal) and not isinstance(amount, bool):
            total += Decimal(amount) * rate
        elif isinstance(amount, float):
            total += Decimal(str(amount)) * rate
    return total


def price_units(policy: CompiledPolicy, call: _Call, units: Decimal, position: Decimal) -> Decimal | None:
    """List price in runes of `units` billable units from `position`, or None for an unpriced credit."""
    pricing = call.limit.pricing
    if pricing is None or not pricing.priced:
        pricing = None
        if not call.credit.pricing.priced and call.credit.name not in policy.exchange.pairs:
            return None
    return to_runes(policy, units, call.credit.name, position, pricing)


class Decider:
    """Decisions for one compiled policy. Stateless between calls; safe to share between threads."""

    def __init__(self, policy: CompiledPolicy, overhead_fns: Mapping[str, OverheadFn] | None = None) -> None:
        self.policy = policy
        self.overhead_fns = dict(overhead_fns or {})

    # -- resolution -----------------------------------------------------------------------------------------

    def _resolve(self, snap: Snapshot, req: Request, now: datetime, gates: list[Gate],
                 changed: dict[str, CustomerState], write: bool) -> _Call | str:
        """The resolved call, or the name of the gate that denied it (or `feature` for an allowed flag)."""
        caller = resolve_customer(snap.customers, snap.aliases, req.customer)
        if caller is None:
            gates.append(Gate("customer", False, {"customer": req.customer}))
            return "customer"
        plan = plan_for(self.policy, snap.customers, caller)
        ent = plan.entitlements.get(req.entitlement) if plan is not None else None
        if plan is None or ent is None:
            gates.append(Gate("entitlement", False, {"entitlement": req.entitlement,
                                                     "plan": plan.name if plan else None}))
            return "entitlement"
        owner = scope_owner(snap.customers, caller, ent.scope)
        if owner is None:
            gates.append(Gate("scope", False, {"scope": ent.scope, "caller_type": caller.type}))
            return "scope"
        limit, expired = limit_for(owner, ent, now)
        if expired and write:
            owner = _editable(changed, owner)
            del owner.overrides[ent.name]
        if limit is None:
            gates.append(Gate("feature", True, {"plan": plan.name}))
            return "feature"
        credit = self.policy.credits[limit.credit]
        value = req.step * limit.increment if req.step else quantity_in(credit, req.value or Quantity(ZERO))
        if req.overhead is not None:
            overhead = req.overhead
        elif value == 0:
            overhead = ZERO
        else:
            overhead = credit_overhead(credit, value, req.event_data, self.overhead_fns)
        return _Call(caller, owner, plan, ent.name, limit, credit, owner.meters.get(ent.name), value, overhead)

    def locate(self, snap: Snapshot, customer: str, entitlement: str, now: datetime) -> _Call | None:
        """The resolved meter of a read: None for unknown customers or entitlements and for feature flags."""
        call = self._resolve(snap, Request(customer, entitlement), now, [], {}, False)
        return None if isinstance(call, str) else call

    # -- allow / check --------------------------------------------------------------------------------------

    def allow(self, snap: Snapshot, req: Request, now: datetime) -> Outcome:
        """Limitr's `allow()`: decide, and return the changed state and the events to publish after commit."""
        return self._decide(snap, req, now, write=True)

    def check(self, snap: Snapshot, req: Request, now: datetime) -> Outcome:
        """Limitr's `check()`: the same decision with nothing changed (a pending reset is seen as done)."""
        return self._decide(snap, req, now, write=False)

    def _decide(self, snap: Snapshot, req: Request, now: datetime, write: bool) -> Outcome:
        gates: list[Gate] = []
        changed: dict[str, CustomerState] = {}
        call = self._resolve(snap, req, now, gates, changed, write)
        if isinstance(call, str):
            allowed = call == "feature"
            return Outcome(allowed, Decision(allowed, call, None, None, tuple(gates)), changed)
        limit, value, meter = call.limit, call.value, call.meter
        events: list[RawEvent] = []
        send = req.send_events and write
        prior = meter.value if meter is not None else ZERO
        new = prior + value
        limit_value = limit.value

        # B. period reset: a call (even a denied one) starts the new period
        reset_to = meters.reset_pending(limit, meter, now)
        reset = reset_to is not None
        if reset:
            new = value
            if write:
                meter = self._meter(changed, call, now)
                meters.reset(meter, reset_to)  # type: ignore[arg-type]
        gates.append(Gate("reset", True, {"reset": reset, "period_start": reset_to}))

        # C. minimum
        if limit.minimum is not None and new < limit.minimum:
            new = limit.minimum

        # D. derived quantities
        meter_value = ZERO if reset else prior
        overhead_base = ZERO if reset or meter is None else meter.overhead
        overhead_total = overhead_base + call.overhead
        overage = new - max(meter_value, limit_value) if new > meter_value else new - limit_value
        billable = max(ZERO, meter_value - limit_value)
        billable_diff = max(ZERO, new - limit_value) - billable
        price_diff = price_units(self.policy, call, billable_diff, billable) if send else None

        # G. governor: a token bucket below a hard limit
        if not req.force and meters.governed(limit):
            current = None if reset else meter
            tokens = meters.governor_available(limit, current, now)
            ok = value <= 0 or value <= tokens
            gates.append(Gate("governor", ok, {"tokens": tokens, "capacity": limit.governor_capacity,
                                               "requested": value}))
            if write:
                meter = self._meter(changed, call, now)
                meter.governor_tokens = tokens - value if ok and value > 0 else tokens
                meter.governor_last_refill = now
                if not ok:
                    meters.push_history(meter, value, limit.ewma_alpha, now)
            if not ok:
                if send:
                    events.append(("meter-governed", {
                        "meter": {"value": meter_value, "limit": limit_value, "overhead": overhead_base},
                        **self._who(call), "event_data": req.event_data,
                        "governor": {"tokens": tokens, "capacity": limit.governor_capacity, "requested": value}}))
                decision = Decision(False, "governor", "governor", tokens, tuple(gates))
                return Outcome(False, decision, changed, events)

        # H. the limit
        own_valid = _limit_check(limit, new, meter_value)
        headroom = None if limit.mode == "observe" else limit_value - meter_value
        gates.append(Gate("limit", own_valid, {"mode": limit.mode, "limit": limit_value, "current": meter_value,
                                               "requested": value, "new": new, "overage": max(ZERO, overage)}))
        allowed = own_valid or limit.mode == "soft" or req.force
        if not write:
            decision = Decision(allowed, "limit", "included", headroom, tuple(gates))
            return Outcome(allowed, decision, changed, events)

        who = self._who(call) if send else {}
        if allowed:  # I. commit path A
            meter = self._meter(changed, call, now)
            meter.value = new
            meter.overhead = overhead_total
            meters.push_history(meter, value, limit.ewma_alpha, now)
            if send and (new != prior or call.overhead != 0):
                payload: dict[str, Any] = {
                    "meter": {"old": prior, "value": new, "limit": limit_value, "diff": value,
                              "overhead": overhead_total, "overhead_diff": call.overhead, "price_diff": price_diff},
                    **who, "remaining": limit_value - new, "event_data": req.event_data}
                if not own_valid:
                    payload["overage"] = overage
                    payload["overage_price"] = price_diff
                    events.append(("meter-overage", payload))
                if reset:
                    events.append(("meter-reset", payload))
                if own_valid:
                    events.append(("meter-changed", payload))
        elif send:  # J. path B: denied by a hard limit
            payload = {"meter": {"value": prior if not reset else ZERO, "limit": limit_value, "invalid": new,
                                 "diff": value, "overhead": overhead_base, "overhead_diff": call.overhead,
                                 "price_diff": price_diff},
                       **who, "invalid_value": new, "overage": overage, "event_data": req.event_data}
            if reset:
                events.append(("meter-reset", payload))
            events.append(("meter-limit", payload))
        decision = Decision(allowed, "limit", "included", headroom, tuple(gates))
        return Outcome(allowed, decision, changed, events)

    # -- helpers ----------------------------------------------------------------------------------------------

    @staticmethod
    def _who(call: _Call) -> dict[str, Any]:
        return {"customer": call.owner.id, "entitlement": call.entitlement, "plan": call.plan.name,
                "credit": call.credit.name}

    @staticmethod
    def _meter(changed: dict[str, CustomerState], call: _Call, now: datetime) -> MeterState:
        """The call's meter, writable: copied into a copy of its owner on first write, created when missing."""
        if not call.meter_owned:
            owner = _editable(changed, call.owner)
            meter = call.meter.copy() if call.meter is not None else MeterState(call.limit.credit, now)
            owner.meters[call.entitlement] = meter
            call.owner, call.meter, call.meter_owned = owner, meter, True
        assert call.meter is not None
        return call.meter


def _editable(changed: dict[str, CustomerState], customer: CustomerState) -> CustomerState:
    copy = changed.get(customer.id)
    if copy is None:
        copy = changed[customer.id] = customer.copy()
    return copy


def _limit_check(limit: Limit, new: Decimal, current: Decimal) -> bool:
    """Limitr's `Limit.check`: observe and non-increasing calls pass; hard_trailing looks at the meter before."""
    if limit.mode == "observe" or new <= current:
        return True
    if limit.hard_trailing and limit.mode == "hard":
        return current < limit.value
    return new <= limit.value
