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
from types import MappingProxyType
from typing import Any, NamedTuple

from limitr_py import money
from limitr_py.compile.graph import CompiledPolicy, Credit, Limit, Plan, Pricing
from limitr_py.engine import caps, controls, grants, meters
from limitr_py.engine.customers import customer_payload
from limitr_py.engine.exchange import to_runes
from limitr_py.engine.records import plain
from limitr_py.engine.resolve import limit_for, plan_for, resolve_customer, scope_owner
from limitr_py.engine.state import ZERO, Cap, ClosedPeriod, CustomerState, Grant, MeterState, evolve, without
from limitr_py.engine.values import Decision, Gate
from limitr_py.errors import InvalidArgumentError
from limitr_py.event_names import EventName
from limitr_py.units import Quantity, UnitError, convert

OverheadFn = Callable[[Decimal, Mapping[str, Any] | None], Any]
RawEvent = tuple[EventName, dict[str, Any]]
PROBE = Decimal("1e-9")
"""The smallest further call `limit-reached` asks about (Autumn asks with 1e-7 in floats)."""
PERIODS_KEPT = 48
"""Closed meter periods kept per customer for invoices of past periods."""


class Request(NamedTuple):
    """One metering call's checked arguments (a tuple: immutable and cheap to build on every call)."""

    customer: str
    entitlement: str
    value: Quantity | None = None  # None with `step`
    step: int = 0  # ±1: use the limit's `increment` (increment / decrement)
    send_events: bool = True
    event_data: Mapping[str, Any] | None = None
    overhead: Decimal | None = None
    force: bool = False
    caps: tuple[Cap, ...] = ()  # call-scoped caps
    probe: bool = False  # report `limit-reached` transitions (someone listens)


class Snapshot(NamedTuple):
    """The customers a call can reach (by id) and the alt-id aliases it may need."""

    customers: Mapping[str, CustomerState]
    aliases: Mapping[str, str] = MappingProxyType({})


class Outcome:
    """A decision's answer, what it changes and the events to send. The `Decision` (why) is built when first
    asked for: a plain `allow()` never asks."""

    __slots__ = ("_decision", "_work", "allowed", "changed", "events")

    def __init__(
        self,
        allowed: bool,
        decision: Decision | None,
        changed: dict[str, CustomerState] | None = None,
        events: list[RawEvent] | None = None,
        work: _Work | None = None,
    ) -> None:
        self.allowed = allowed
        self.changed = {} if changed is None else changed
        self.events = [] if events is None else events
        self._decision = decision
        self._work = work

    @property
    def decision(self) -> Decision:
        if self._decision is None:
            assert self._work is not None  # an Outcome is built with its Decision or with the work behind it
            self._decision = self._work.decision()
        return self._decision


class Call(NamedTuple):
    """Everything resolved about one call, fixed once resolved (a tuple: immutable and cheap to build). `caller`,
    `owner` and `meter` are as read; what the stages write goes to copies in the decision's write set
    (`editable`, `Decider.writable_meter`), and a stage that needs the latest asks `latest` / `current_meter`."""

    caller: CustomerState
    owner: CustomerState
    plan: Plan
    entitlement: str
    limit: Limit
    credit: Credit
    meter: MeterState | None
    value: Decimal
    overhead: Decimal
    group: Mapping[str, CustomerState]

    @property
    def pricing(self) -> Pricing | None:
        """The limit's own overage pricing when it has one (it replaces the credit's curve)."""
        p = self.limit.pricing
        return p if p is not None and p.priced else None


@dataclass(slots=True)
class _Work:
    """One decision in progress, passed from stage to stage: the resolved call, what the stages derived from
    it, and what it changes. Built and dropped within one `_decide`."""

    snap: Snapshot
    req: Request
    call: Call
    now: datetime
    write: bool
    send: bool  # events are built (someone listens and the call writes)
    gates: list[Gate] | None  # None when nobody asks why (allow without explain): nothing built for it
    changed: dict[str, CustomerState]
    events: list[RawEvent] = field(default_factory=list)
    eff: controls.Effective | None = None
    reset_to: datetime | None = None
    prior: Decimal = ZERO  # the meter before the call (before a reset)
    new: Decimal = ZERO  # the meter after the call
    meter_value: Decimal = ZERO  # the meter the gates start from (0 after a reset)
    overhead_base: Decimal = ZERO
    held_value: Decimal = ZERO
    held_overhead: Decimal = ZERO
    gate_value: Decimal = ZERO  # the call's value with the live holds
    gate_new: Decimal = ZERO
    gate_overage: Decimal = ZERO
    rate: Decimal = ZERO
    gate_rate: Decimal = ZERO
    overage: Decimal = ZERO
    position: Decimal = ZERO  # meter − limit: negative inside the included amount
    billable: Decimal = ZERO
    billable_diff: Decimal = ZERO
    gate_billable_diff: Decimal = ZERO
    price_diff: Decimal | None = None
    owner_grants: dict[str, Grant] = field(default_factory=dict)
    balance: Decimal = ZERO
    found: list[caps.Applicable] = field(default_factory=list)
    own_valid: bool = True
    hard: bool = False
    allowed: bool = False
    headroom: Decimal | None = None

    def outcome(self) -> Outcome:
        return Outcome(self.allowed, None, self.changed, self.events, self)

    def decision(self) -> Decision:
        return Decision(self.allowed, "limit", "included", self.headroom, _frozen(self.gates))


def quantity_in(credit: Credit, quantity: Quantity) -> Decimal:
    """A call's value in the credit's unit; a unit that does not fit is the caller's mistake."""
    try:
        return convert(quantity, credit.units)
    except UnitError as exc:
        raise InvalidArgumentError(f"value for credit `{credit.name}`: {exc}") from None


def credit_overhead(
    credit: Credit, units: Decimal, context: Mapping[str, Any] | None, fns: Mapping[str, OverheadFn]
) -> Decimal:
    """Provider cost (runes) of `units`: a registered callable, else the declarative rate table, else
    `units × overhead_cost`. A callable that fails or returns a non-number falls back to the last rule."""
    fallback = units * credit.overhead_cost
    fn = fns.get(credit.name)
    if fn is not None:
        try:
            result = fn(units, context)
        except Exception:
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


def list_price(
    policy: CompiledPolicy, credit: Credit, pricing: Pricing | None, units: Decimal, position: Decimal
) -> Decimal | None:
    """List price in runes of `units` billable units from `position` on `pricing` (a limit's own) or the
    credit's curve; None for an unpriced credit."""
    if pricing is None and not credit.pricing.priced and credit.name not in policy.exchange.pairs:
        return None
    return to_runes(policy, units, credit.name, position, pricing)


def price_units(policy: CompiledPolicy, call: Call, units: Decimal, position: Decimal) -> Decimal | None:
    return list_price(policy, call.credit, call.pricing, units, position)


class Decider:
    """Decisions for one compiled policy. Stateless between calls; safe to share between threads."""

    def __init__(self, policy: CompiledPolicy, overhead_fns: Mapping[str, OverheadFn] | None = None) -> None:
        self.policy = policy
        self.overhead_fns = dict(overhead_fns or {})

    # -- resolution -----------------------------------------------------------------------------------------

    def _resolve(
        self,
        snap: Snapshot,
        req: Request,
        now: datetime,
        gates: list[Gate] | None,
        changed: dict[str, CustomerState],
        write: bool,
    ) -> Call | str:
        """The resolved call, or the name of the gate that denied it (or `feature` for an allowed flag)."""
        caller = resolve_customer(snap.customers, snap.aliases, req.customer)
        if caller is None:
            if gates is not None:
                gates.append(Gate("customer", False, {"customer": req.customer}))
            return "customer"
        plan = plan_for(self.policy, snap.customers, caller)
        ent = plan.entitlements.get(req.entitlement) if plan is not None else None
        if plan is None or ent is None:
            if gates is not None:
                gates.append(
                    Gate("entitlement", False, {"entitlement": req.entitlement, "plan": plan.name if plan else None})
                )
            return "entitlement"
        owner = scope_owner(snap.customers, caller, ent.scope)
        if owner is None:
            if gates is not None:
                gates.append(Gate("scope", False, {"scope": ent.scope, "caller_type": caller.type}))
            return "scope"
        limit, expired = limit_for(owner, ent, now)
        if expired and write:
            owner = editable(changed, owner)
            owner.overrides = without(owner.overrides, ent.name)
        if limit is None:
            if gates is not None:
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
        return Call(
            caller, owner, plan, ent.name, limit, credit, owner.meters.get(ent.name), value, overhead, snap.customers
        )

    def locate(
        self, snap: Snapshot, customer: str, entitlement: str, now: datetime, req: Request | None = None
    ) -> Call | None:
        """The resolved meter of a read (or of `req`, with its value and overhead worked out): None for unknown
        customers or entitlements and for feature flags."""
        call = self._resolve(snap, req or Request(customer, entitlement), now, None, {}, False)
        return None if isinstance(call, str) else call

    # -- allow / check --------------------------------------------------------------------------------------

    def allow(self, snap: Snapshot, req: Request, now: datetime, explain: bool = False) -> Outcome:
        """Limitr's `allow()`: decide, and return the changed state and the events to publish after commit.
        With `explain` the decision lists every gate with its numbers (else `Decision.gates` is empty)."""
        return self._decide(snap, req, now, True, explain)

    def check(self, snap: Snapshot, req: Request, now: datetime, explain: bool = True) -> Outcome:
        """Limitr's `check()`: the same decision with nothing changed (a pending reset is seen as done)."""
        return self._decide(snap, req, now, False, explain)

    def owner_grants(self, call: Call, now: datetime, changed: dict[str, CustomerState] | None) -> dict[str, Grant]:
        """The meter owner's grants as of `now`; with `changed`, expiry and resets are written to its copy."""
        owner = call.owner if changed is None else latest(changed, call.owner)
        if not owner.grants:
            return {}
        current, moved = grants.make_current(owner.grants, now)
        if moved and changed is not None:
            editable(changed, owner).grants = dict(current)
        return current

    def grant_balance(self, call: Call, now: datetime, position: Decimal) -> Decimal:
        """Grants worth in the call's credit at billable `position` (0 when the limit takes no grants)."""
        if not call.limit.grants_apply or not call.owner.grants:
            return ZERO
        return grants.balance(self.policy, self.owner_grants(call, now, None), call.credit.name, position)

    def applicable_caps(
        self, snap: Snapshot, call: Call, req: Request, now: datetime, changed: dict[str, CustomerState] | None
    ) -> list[caps.Applicable]:
        """The caps a call must respect: the caller's own, shared ones up its refs chain, call-scoped ones.
        With `changed`, caps that expired or whose period ended are written to their holder's copy."""
        found: list[caps.Applicable] = []
        if not req.caps and not call.caller.caps and not call.caller.refs:
            return found
        pricing = call.pricing
        for holder, own in caps.holders(snap.customers, call.caller):
            if not holder.caps:
                continue
            current, moved = caps.make_current(holder.caps, now)
            if moved and changed is not None:
                editable(changed, holder).caps = dict(current)
            for cap in current.values():
                if caps.visible(cap, own, call.caller.type) and caps.applies(
                    self.policy, cap, call.entitlement, call.credit.name, pricing
                ):
                    found.append(caps.Applicable(holder.id, cap))
        for cap in req.caps:
            if caps.applies(self.policy, cap, call.entitlement, call.credit.name, pricing):
                found.append(caps.Applicable(None, cap))
        return found

    def _decide(self, snap: Snapshot, req: Request, now: datetime, write: bool, explain: bool) -> Outcome:
        """Resolve the call, then walk the gates in Limitr's order (reset, caps, governor, billing controls, the
        limit), then the effects of an allowed call. `check()` and `explain()` walk the same stages without
        writing; the first gate that denies ends the walk."""
        gates: list[Gate] | None = [] if explain else None
        changed: dict[str, CustomerState] = {}
        call = self._resolve(snap, req, now, gates, changed, write)
        if isinstance(call, str):
            allowed = call == "feature"
            return Outcome(allowed, Decision(allowed, call, None, None, _frozen(gates)), changed)
        w = _Work(snap, req, call, now, write, req.send_events and write, gates, changed)
        self._controls(w)
        self._reset(w)
        self._derive(w)
        denied = self._gate_caps(w) or self._gate_governor(w) or self._gate_controls(w)
        if denied is not None:
            return denied
        self._gate_limit(w)
        if not write:
            return w.outcome()
        return self._effects(w)

    # -- the stages of a decision, in order ---------------------------------------------------------------

    def _controls(self, w: _Work) -> None:
        """A. billing controls in force (worked out only when the caller, its customer or the limit has any);
        they may change the limit's mode."""
        call = w.call
        if not call.caller.billing.empty or call.caller.parent is not None or call.limit.max_overage is not None:
            w.eff = controls.effective(self.policy, w.snap.customers, call.caller, call.entitlement, call.limit, w.now)
            if w.eff.mode != call.limit.mode:
                w.call = call._replace(limit=evolve(call.limit, mode=w.eff.mode))

    def _reset(self, w: _Work) -> None:
        """B. period reset: a call (even a denied one) starts the new period; C. the limit's minimum."""
        call, limit = w.call, w.call.limit
        w.prior = call.meter.value if call.meter is not None else ZERO
        w.new = w.prior + call.value
        w.reset_to = meters.reset_pending(limit, call.meter, w.now)
        if w.reset_to is not None:
            w.new = call.value
            if w.write:
                self._archive(call, w.changed, w.reset_to, w.events, w.send)
                meters.reset(self.writable_meter(w.changed, call, w.now), w.reset_to)
        if w.gates is not None:
            w.gates.append(Gate("reset", True, {"reset": w.reset_to is not None, "period_start": w.reset_to}))
        if limit.minimum is not None and w.new < limit.minimum:
            w.new = limit.minimum

    def _derive(self, w: _Work) -> None:
        """D. what the gates compare: position, overage, billable units, holds (they count for the gates only:
        a hold never turns this call into overage), grants and the applicable caps."""
        call, limit, value, now = w.call, w.call.limit, w.call.value, w.now
        reset = w.reset_to is not None
        meter = current_meter(w.changed, call)
        w.meter_value = ZERO if reset else w.prior
        w.overhead_base = ZERO if reset or meter is None else meter.overhead
        if value > 0 and meter is not None and meter.holds:
            live = meters.live_holds(meter, now)
            if w.write and len(live) != len(meter.holds):
                self.writable_meter(w.changed, call, now).holds = live
            for h in live.values():
                if h.value > 0:
                    w.held_value += h.value
                    w.held_overhead += h.overhead
        limit_value, meter_value = limit.value, w.meter_value
        w.gate_value, w.gate_new = value + w.held_value, w.new + w.held_value
        w.gate_overage = (
            w.gate_new - max(meter_value, limit_value) if w.gate_new > meter_value else w.gate_new - limit_value
        )
        w.rate = call.overhead / value if value != 0 else call.credit.overhead_cost
        w.gate_rate = (call.overhead + w.held_overhead) / w.gate_value if w.held_value and w.gate_value else w.rate
        w.overage = w.new - max(meter_value, limit_value) if w.new > meter_value else w.new - limit_value
        w.position = meter_value - limit_value
        w.billable = max(ZERO, w.position)
        w.billable_diff = max(ZERO, w.new - limit_value) - w.billable
        w.gate_billable_diff = max(ZERO, w.gate_new - limit_value) - w.billable
        w.price_diff = price_units(self.policy, call, w.billable_diff, w.billable) if w.send else None
        mark = w.changed if w.write else None
        w.owner_grants = self.owner_grants(call, now, mark) if limit.grants_apply else {}
        if limit.grants_apply and w.owner_grants:
            w.balance = grants.balance(self.policy, w.owner_grants, call.credit.name, w.billable)
        w.found = self.applicable_caps(w.snap, call, w.req, now, mark)

    def _gate_caps(self, w: _Work) -> Outcome | None:
        """E, F. caps: first those grants cannot relieve, then `ignore_grants` ones net of what grants will cover."""
        call = w.call
        if not w.found or w.req.force or call.value <= 0:
            return None
        spend = caps.Spend(
            w.gate_value,
            w.gate_rate,
            call.overhead + w.held_overhead,
            w.position,
            w.billable,
            w.gate_billable_diff,
            ZERO,
        )
        gate_covered = min(w.balance, max(ZERO, w.gate_billable_diff))
        for name, relieved in (("cap", False), ("cap-after-grants", True)):
            for a in w.found:
                if a.cap.observe_only or a.cap.ignore_grants != relieved:
                    continue
                s = evolve(spend, covered=gate_covered) if relieved else spend
                amount = caps.consumption(self.policy, a.cap, call.credit.name, call.pricing, s)
                if not caps.has_room(a.cap, amount):
                    return self._cap_denied(w, name, a, amount)
            if w.gates is not None:
                w.gates.append(Gate(name, True, {"caps": len(w.found)}))
        return None

    def _gate_governor(self, w: _Work) -> Outcome | None:
        """G. governor: a token bucket below a hard limit."""
        call, limit, value, now = w.call, w.call.limit, w.call.value, w.now
        if w.req.force or not meters.governed(limit):
            return None
        tokens = meters.governor_available(
            limit, None if w.reset_to is not None else current_meter(w.changed, call), now
        )
        ok = value <= 0 or value <= tokens
        if w.gates is not None:
            w.gates.append(
                Gate("governor", ok, {"tokens": tokens, "capacity": limit.governor_capacity, "requested": value})
            )
        if w.write:
            meter = self.writable_meter(w.changed, call, now)
            meter.governor_tokens = tokens - value if ok and value > 0 else tokens
            meter.governor_last_refill = now
            if not ok:
                meters.push_history(meter, value, limit.ewma_alpha, now)
        if ok:
            return None
        if w.send:
            meter_info = {"value": w.meter_value, "limit": limit.value, "overhead": w.overhead_base}
            governor = {"tokens": tokens, "capacity": limit.governor_capacity, "requested": value}
            w.events.append(
                (
                    "meter-governed",
                    {"meter": meter_info, **self._who(call), "event_data": w.req.event_data, "governor": governor},
                )
            )
        return Outcome(False, Decision(False, "governor", "governor", tokens, _frozen(w.gates)), w.changed, w.events)

    def _gate_controls(self, w: _Work) -> Outcome | None:
        """Billing controls: usage-limit windows (the tightest wins), overage units, then the overage money limit."""
        eff, call = w.eff, w.call
        if eff is None or w.req.force or call.value <= 0:
            return None
        denied = self._control_gates(w, eff)
        return None if denied is None else Outcome(False, denied, w.changed, w.events)

    def _gate_limit(self, w: _Work) -> None:
        """H. the limit; grants may carry a hard limit, but only when they cover all of it."""
        call, limit = w.call, w.call.limit
        w.own_valid = _limit_check(limit, w.new, w.meter_value)
        gate_valid = _limit_check(limit, w.gate_new, w.meter_value + w.held_value) if w.held_value else w.own_valid
        w.hard = limit.mode == "hard" and not w.req.force
        grants_cover = limit.grants_apply and w.gate_overage > 0 and w.balance >= w.gate_overage
        w.allowed = not w.hard or (w.own_valid and gate_valid) or grants_cover
        if limit.mode != "observe":
            w.headroom = limit.value + w.balance - w.meter_value - w.held_value
        if w.gates is None:
            return
        detail = {
            "mode": limit.mode,
            "limit": limit.value,
            "current": w.meter_value,
            "held": w.held_value,
            "requested": call.value,
            "new": w.new,
            "overage": max(ZERO, w.overage),
            "grants": w.balance,
        }
        w.gates.append(Gate("limit", w.allowed, detail))

    def _effects(self, w: _Work) -> Outcome:
        """The effects of the decision: grants drawn, caps moved (or the call denied by one), the meter
        committed, events, billing controls' counters and the limit-reached probe; or the denial's events."""
        call, limit, policy = w.call, w.call.limit, self.policy
        covered, uncovered, drawn = ZERO, max(ZERO, w.overage), None
        if w.allowed and not w.own_valid and limit.grants_apply and w.owner_grants and w.overage > 0:
            plan_grants, _ = grants.reconcile_topups(call.plan, call.owner.type, w.owner_grants, w.now)
            drawn, covered, uncovered = grants.draw(policy, plan_grants, call.credit.name, w.overage, w.billable)
            if w.hard and uncovered > 0:  # conversions fell short of the balance: all-or-nothing
                w.allowed = False
        # K (checked first). caps move with the meter or not at all
        moves: list[tuple[caps.Applicable, Decimal]] = []
        if w.allowed and w.found:
            spend = caps.Spend(call.value, w.rate, call.overhead, w.position, w.billable, w.billable_diff, covered)
            for a in w.found:
                amount = caps.consumption(policy, a.cap, call.credit.name, call.pricing, spend)
                # A call that takes units and still lowers the cap is a volume band crossing repricing every unit
                # (Limitr's rule): the cap follows the true total. Only calls that give units back need
                # `follow_decrements` to lower a cap.
                units = w.billable_diff if a.cap.overage_only else call.value
                if amount == 0 or (amount < 0 and units <= 0 and not a.cap.follow_decrements):
                    continue
                if not w.req.force and amount > 0 and not caps.has_room(a.cap, amount):
                    return self._cap_denied(w, "cap", a, amount)
                moves.append((a, amount))
        if w.allowed:
            self._commit_meter(w, drawn, covered, uncovered)
            self._move_caps(call, moves, w.changed, w.events, w.send)
            if w.eff is not None:
                self._billing_effects(w, w.eff)
            # only ask "would the smallest call still pass?" when an earlier answer was no, or when something could
            # now say no (a hard limit, a cap, a billing control: a plain soft or observe limit never blocks) and
            # it is not sure to pass
            if w.req.probe and w.send:
                can_block = limit.mode == "hard" or w.found or w.eff is not None
                if call.entitlement in latest(w.changed, call.caller).billing.blocked or (
                    can_block and not _probe_passes(w)
                ):
                    self._probe(w.snap, call, w.req, w.changed, w.events, w.now)
        elif w.send:  # J. denied by a hard limit
            payload = {
                "meter": {
                    "value": w.meter_value,
                    "limit": limit.value,
                    "invalid": w.new,
                    "diff": call.value,
                    "overhead": w.overhead_base,
                    "overhead_diff": call.overhead,
                    "price_diff": w.price_diff,
                },
                **self._who(call),
                "invalid_value": w.new,
                "overage": w.overage,
                "event_data": w.req.event_data,
            }
            if w.reset_to is not None:
                w.events.append(("meter-reset", payload))
            w.events.append(("meter-limit", payload))
        return w.outcome()

    def _commit_meter(self, w: _Work, drawn: dict[str, Grant] | None, covered: Decimal, uncovered: Decimal) -> None:
        """I. an allowed call's meter, grants and billed amounts, and its meter events."""
        call, limit, policy, value = w.call, w.call.limit, self.policy, w.call.value
        overhead_total = w.overhead_base + call.overhead
        meter = self.writable_meter(w.changed, call, w.now)
        meter.value = w.new
        meter.overhead = overhead_total
        meters.push_history(meter, value, limit.ewma_alpha, w.now)
        if drawn is not None:
            editable(w.changed, call.owner).grants = drawn
        billed = w.eff is None or w.eff.billed
        if w.billable_diff != 0 and billed:
            listed = price_units(policy, call, w.billable_diff, w.billable) or ZERO
            paid = (price_units(policy, call, covered, w.billable) or ZERO) if covered > 0 else ZERO
            meter = self.writable_meter(w.changed, call, w.now)
            meter.billed += listed
            meter.covered += paid
            meter.covered_units += covered
        if not w.send or (w.new == w.prior and call.overhead == 0):
            return
        payload: dict[str, Any] = {
            "meter": {
                "old": w.prior,
                "value": w.new,
                "limit": limit.value,
                "diff": value,
                "overhead": overhead_total,
                "overhead_diff": call.overhead,
                "price_diff": w.price_diff,
            },
            **self._who(call),
            "remaining": limit.value - w.new,
            "event_data": w.req.event_data,
        }
        if covered > 0:
            payload["grant_value_applied"] = covered
        overage_event = not w.own_valid and uncovered > 0
        if not w.own_valid:
            payload["overage"] = uncovered
        if overage_event:
            payload["overage_price"] = (
                ZERO
                if not billed
                else w.price_diff
                if covered == 0 or w.price_diff is None
                else price_units(policy, call, uncovered, w.billable + covered)
            )
            w.events.append(("meter-overage", payload))
        if w.reset_to is not None:
            w.events.append(("meter-reset", payload))
        if not overage_event:
            w.events.append(("meter-changed", payload))

    # -- billing controls, archive, limit-reached -----------------------------------------------------------

    def _archive(
        self, call: Call, changed: dict[str, CustomerState], end: datetime, events: list[RawEvent], send: bool
    ) -> None:
        """Keep the closing period of the call's meter (for `invoice(period="previous")`) and report it."""
        old = call.meter
        if old is None or old.started is None:
            return
        owner = editable(changed, call.owner)
        closed = ClosedPeriod(
            call.entitlement, old.started, end, old.value, old.overhead, old.billed, old.covered, old.covered_units
        )
        owner.periods = (*owner.periods, closed)[-PERIODS_KEPT:]
        if send:
            events.append(("period-closed", {"customer": owner.id, **plain(closed)}))

    def _control_gates(self, w: _Work, eff: controls.Effective) -> Decision | None:
        """Usage-limit windows (the tightest wins), overage units, then the overage money limit."""
        snap, call, changed, gates, now = w.snap, w.call, w.changed, w.gates, w.now
        gate_value, gate_new, limit_value, billable_diff = w.gate_value, w.gate_new, call.limit.value, w.billable_diff
        for ref in eff.windows:
            holder = _state_of(call, ref.holder, changed)
            start, used = controls.window_used(holder, ref, now)
            need = gate_value * ref.factor
            ok = used + need <= ref.limit.limit
            if gates is not None:
                gates.append(
                    Gate(
                        "usage_limit",
                        ok,
                        {
                            "feature": ref.limit.feature_id,
                            "interval": ref.limit.interval,
                            "holder": ref.holder,
                            "window_start": start,
                            "used": used,
                            "limit": ref.limit.limit,
                            "requested": need,
                        },
                    )
                )
            if not ok:
                return Decision(False, "usage_limit", "usage_limit", ref.limit.limit - used, _frozen(gates))
        if call.limit.mode == "soft" and eff.max_overage is not None:
            over = max(ZERO, gate_new - limit_value)
            ok = over <= eff.max_overage
            if gates is not None:
                gates.append(Gate(eff.max_overage_type, ok, {"overage": over, "max": eff.max_overage}))
            if not ok:
                return Decision(
                    False,
                    eff.max_overage_type,
                    eff.max_overage_type,
                    eff.max_overage + limit_value - (gate_new - gate_value),
                    _frozen(gates),
                )
        cap = eff.overage_limit
        if cap is not None and cap.on_limit_reached == "block" and billable_diff > 0 and eff.overage_holder:
            spent = self.unbilled_overage(snap, _state_of(call, eff.overage_holder, changed), now)
            spent_minor = money.to_minor(spent, self.policy.currency)
            ok = spent_minor < cap.max_overage_amount
            if gates is not None:
                detail = {"overage_amount": spent_minor, "max_overage_amount": cap.max_overage_amount}
                gates.append(Gate("overage_limit", ok, detail))
            if not ok:
                return Decision(False, "overage_limit", "spend_limit", ZERO, _frozen(gates))
        return None

    def unbilled_overage(self, snap: Snapshot, holder: CustomerState, now: datetime) -> Decimal:
        """Runes of overage billed and not covered by grants in each meter's current period."""
        plan = plan_for(self.policy, snap.customers, holder)
        total = ZERO
        for name, m in holder.meters.items():
            ent = plan.entitlements.get(name) if plan else None
            limit = ent.limit if ent is not None else None
            if limit is not None and meters.reset_pending(limit, m, now) is not None:
                continue
            total += m.billed - m.covered
        return total

    def _billing_effects(self, w: _Work, eff: controls.Effective) -> None:
        """After an allowed call: count usage windows, fire alerts, notify the money limit, auto top-ups."""
        snap, call, changed, events, send, now = w.snap, w.call, w.changed, w.events, w.send, w.now
        value, old, new = call.value, w.meter_value, w.new
        if value > 0:
            for ref in eff.windows:
                holder = editable(changed, _state_of(call, ref.holder, changed))
                start, used = controls.window_used(holder, ref, now)
                holder.billing = evolve(
                    holder.billing,
                    windows=controls.count(holder.billing.windows, ref.key, start, used, value * ref.factor),
                )
        if send:
            for holder_id, alert in eff.alerts:
                if controls.crossed(alert, old, new, call.limit.value):
                    events.append(
                        (
                            "usage-alert-triggered",
                            {
                                "customer": holder_id,
                                "caller": call.caller.id,
                                "entitlement": call.entitlement,
                                "usage": new,
                                "usage_alert": plain(alert),
                            },
                        )
                    )
        cap = eff.overage_limit
        if send and cap is not None and cap.on_limit_reached == "notify" and eff.overage_holder:
            holder = _state_of(call, eff.overage_holder, changed)
            after = money.to_minor(self.unbilled_overage(snap, holder, now), self.policy.currency)
            if holder.billing.blocked.get("*overage_limit") is None and after >= cap.max_overage_amount:
                copy = editable(changed, holder)
                copy.billing = evolve(copy.billing, blocked={**copy.billing.blocked, "*overage_limit": "spend_limit"})
                events.append(
                    (
                        "limit-reached",
                        {
                            "customer": holder.id,
                            "caller": call.caller.id,
                            "entitlement": call.entitlement,
                            "limit_type": "spend_limit",
                            "control": "overage_limit",
                            "blocking": False,
                        },
                    )
                )
        top = controls.chain(snap.customers, call.caller)[-1]
        if top.billing.auto_topups:
            self._auto_topups(call, _state_of(call, top.id, changed), changed, events, send, now)

    def _auto_topups(
        self,
        call: Call,
        top: CustomerState,
        changed: dict[str, CustomerState],
        events: list[RawEvent],
        send: bool,
        now: datetime,
    ) -> None:
        plan = call.plan
        for feature, rule in top.billing.auto_topups.items():
            if not rule.enabled:
                continue
            current, _ = grants.make_current(top.grants, now)
            if feature in self.policy.credits or feature in self.policy.exchange.pairs:
                balance = grants.balance(self.policy, current, feature, ZERO)
                credit_name = feature
            elif feature == call.entitlement and top.id == call.owner.id:
                credit_name = call.credit.name
                balance = (
                    call.limit.value
                    + grants.balance(self.policy, current, credit_name, ZERO)
                    - (meter.value if (meter := current_meter(changed, call)) else ZERO)
                )
            else:
                continue
            if balance > rule.threshold:
                continue
            topup = next((t for t in plan.topups.values() if t.credit == credit_name and not t.included), None)
            if topup is None:
                continue
            history = top.billing.topup_purchases.get(feature, ())
            if rule.purchase_limit is not None:
                since = controls.purchase_window_start(rule.purchase_limit, now)
                history = tuple(t for t in history if t > since)
                if len(history) >= rule.purchase_limit.limit:
                    continue
            holder = editable(changed, top)
            grant_id = f"auto:{feature}:{now.isoformat()}:{len(history)}"
            holder.grants = {
                **holder.grants,
                grant_id: evolve(
                    grants.from_topup(topup, grant_id, now), value=rule.quantity, starting_value=rule.quantity
                ),
            }
            holder.billing = evolve(
                holder.billing, topup_purchases={**holder.billing.topup_purchases, feature: (*history, now)}
            )
            if send:
                packs = rule.quantity / topup.value if topup.value else Decimal(1)
                events.append(
                    (
                        "auto-topup-triggered",
                        {
                            "customer": holder.id,
                            "feature_id": feature,
                            "topup": topup.name,
                            "quantity": rule.quantity,
                            "threshold": rule.threshold,
                            "balance": balance,
                            "packs": packs,
                            "amount": None if topup.price is None else packs * topup.price,
                        },
                    )
                )

    def _probe(
        self,
        snap: Snapshot,
        call: Call,
        req: Request,
        changed: dict[str, CustomerState],
        events: list[RawEvent],
        now: datetime,
    ) -> None:
        """`limit-reached` on the transition from allowed to not allowed: would the smallest further call pass?"""
        after = Snapshot({**snap.customers, **changed}, snap.aliases)
        probe = self._decide(
            after,
            Request(req.customer, req.entitlement, Quantity(PROBE), caps=req.caps, send_events=False),
            now,
            False,
            False,  # only its answer and limit type are read
        )
        caller = _state_of(call, call.caller.id, changed)
        stored = caller.billing.blocked.get(call.entitlement)
        # A call of at least the probe's size was just allowed, so the smallest call passed before it: a stored
        # "blocked" is from an earlier transition that has since ended (a period reset, a window that rolled,
        # room freed), and this probe's denial is a new transition to report, naming the control binding now.
        was = stored if call.value < PROBE else None
        if probe.allowed and stored is not None:
            copy = editable(changed, caller)
            copy.billing = evolve(
                copy.billing, blocked={k: v for k, v in copy.billing.blocked.items() if k != call.entitlement}
            )
        elif not probe.allowed and was is None:
            kind = probe.decision.limit_type or "included"
            copy = editable(changed, caller)
            copy.billing = evolve(copy.billing, blocked={**copy.billing.blocked, call.entitlement: kind})
            events.append(
                (
                    "limit-reached",
                    {
                        "customer": call.owner.id,
                        "caller": call.caller.id,
                        "entitlement": call.entitlement,
                        "limit_type": kind,
                        "entity_id": call.caller.id if call.caller.parent else None,
                    },
                )
            )

    def _cap_denied(self, w: _Work, gate: str, a: caps.Applicable, amount: Decimal) -> Outcome:
        """A cap without room for the call: its gate, its `cap-limit` event, and the denial."""
        call, req, gates, changed, events, send = w.call, w.req, w.gates, w.changed, w.events, w.send
        if gates is not None:
            detail = {
                "cap": a.cap.id,
                "holder": a.holder,
                "ceiling": a.cap.value,
                "meter_value": a.cap.meter_value,
                "amount": amount,
            }
            gates.append(Gate(gate, False, detail))
        meter = {
            "value": w.meter_value,
            "limit": call.limit.value,
            "diff": call.value,
            "overhead": w.overhead_base,
            "overhead_diff": call.overhead,
            "price_diff": w.price_diff,
        }
        if send:
            events.append(
                (
                    "cap-limit",
                    {
                        "customer": a.holder or call.caller.id,
                        "caller": call.caller.id,
                        "entitlement": call.entitlement,
                        "plan": call.plan.name,
                        "credit": call.credit.name,
                        "cap": plain(a.cap),
                        "meter": meter,
                        "event_data": req.event_data,
                    },
                )
            )
        headroom = a.cap.value - a.cap.meter_value
        return Outcome(False, Decision(False, gate, "cap", headroom, _frozen(gates)), changed, events)

    def _move_caps(
        self,
        call: Call,
        moves: list[tuple[caps.Applicable, Decimal]],
        changed: dict[str, CustomerState],
        events: list[RawEvent],
        send: bool,
    ) -> None:
        """Add each cap's consumption; report threshold crossings and, once each, other holders that changed."""
        touched: list[str] = []
        for a, amount in moves:
            cap = a.cap
            after = cap.meter_value + amount
            if a.holder is not None:
                holder = editable(changed, _state_of(call, a.holder, changed))
                holder.caps = {**holder.caps, cap.id: evolve(cap, meter_value=after)}
                if a.holder not in touched and a.holder != call.owner.id:
                    touched.append(a.holder)
            if send and cap.meter_value < cap.value <= after:
                events.append(
                    (
                        "cap-threshold-crossed",
                        {
                            "customer": a.holder or call.caller.id,
                            "caller": call.caller.id,
                            "entitlement": call.entitlement,
                            "cap": plain(evolve(cap, meter_value=after)),
                        },
                    )
                )
        if send:
            for holder_id in touched:
                events.append(("customer-set", customer_payload(changed[holder_id])))

    # -- helpers ----------------------------------------------------------------------------------------------

    @staticmethod
    def _who(call: Call) -> dict[str, Any]:
        return {
            "customer": call.owner.id,
            "entitlement": call.entitlement,
            "plan": call.plan.name,
            "credit": call.credit.name,
        }

    @staticmethod
    def writable_meter(changed: dict[str, CustomerState], call: Call, now: datetime) -> MeterState:
        """The call's meter, writable: copied into a copy of its owner on first write, created when missing."""
        owner = editable(changed, call.owner)
        meter = owner.meters.get(call.entitlement)
        if meter is None or meter is call.meter:  # not yet the call's own: the one read is shared with the snapshot
            meter = owner.meters[call.entitlement] = (
                call.meter.copy() if call.meter else MeterState(call.limit.credit, now)
            )
        return meter


def latest(changed: Mapping[str, CustomerState], customer: CustomerState) -> CustomerState:
    """A customer as the decision so far has it: its copy in the write set, else as read."""
    return changed.get(customer.id, customer)


def current_meter(changed: Mapping[str, CustomerState], call: Call) -> MeterState | None:
    """The call's meter as the decision so far has it."""
    owner = changed.get(call.owner.id)
    return call.meter if owner is None else owner.meters.get(call.entitlement)


def _state_of(call: Call, ident: str, changed: dict[str, CustomerState]) -> CustomerState:
    """The latest state of a customer the call touched (its copy if one was made)."""
    if ident in changed:
        return changed[ident]
    found = call.group.get(ident)
    assert found is not None
    return found


def _frozen(gates: list[Gate] | None) -> tuple[Gate, ...]:
    return () if gates is None else tuple(gates)


def editable(changed: dict[str, CustomerState], customer: CustomerState) -> CustomerState:
    """The call's writable copy of `customer` (made on first write and kept in `changed`, which is committed)."""
    copy = changed.get(customer.id)
    if copy is None:
        copy = changed[customer.id] = customer.copy()
    return copy


PROBE_SHORTCUT = True
"""Whether `_probe_passes` may answer for the probe (tests turn it off to compare with the full probe)."""


def _probe_passes(w: _Work) -> bool:
    """Whether the probe of an allowed call would surely pass, without deciding it: only a hard limit can deny
    it (no cap applies, no billing control is in force, no governor, no minimum) and the meter after the call,
    with its live holds, still has room for the smallest call. Grants only add room. With nothing stored as
    blocked, a passing probe changes nothing, so it need not run (most calls of a listened-to hard limit)."""
    limit = w.call.limit
    if not PROBE_SHORTCUT or w.found or w.eff is not None or w.req.caps or w.call.value <= 0:
        return False
    if limit.mode != "hard" or limit.minimum is not None or meters.governed(limit):
        return False
    used = w.new + w.held_value  # held_value is summed for calls that take units (value > 0)
    return used < limit.value if limit.hard_trailing else used + PROBE <= limit.value


def _limit_check(limit: Limit, new: Decimal, current: Decimal) -> bool:
    """Limitr's `Limit.check`: observe and non-increasing calls pass; hard_trailing looks at the meter before."""
    if limit.mode == "observe" or new <= current:
        return True
    if limit.hard_trailing and limit.mode == "hard":
        return current < limit.value
    return new <= limit.value
