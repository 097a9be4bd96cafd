"""Reservations and estimates: holding room before a call, settling or releasing the hold, and learning the size
of calls (the customer's own estimates in its commit; the policy-wide ones are the façade's own small commit)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import CompiledPolicy, Entitlement
from limitr_py.engine import arguments as args
from limitr_py.engine import estimates, holds, keys
from limitr_py.engine.decide import Call, Decider, Request, Snapshot
from limitr_py.engine.estimates import Estimate
from limitr_py.engine.state import CustomerState
from limitr_py.engine.txn import Attempt
from limitr_py.units import Quantity


def entitlement_of(call: Call) -> Entitlement:
    return call.plan.entitlements[call.entitlement]


def segment_of(context: Mapping[str, Any] | None, call: Call, given: str | None) -> str | None:
    """The estimate segment: as given, else the value of the entitlement's `estimate_segment` context field."""
    if given is not None:
        return given
    name = entitlement_of(call).estimate_segment
    if context is None or name is None or context.get(name) is None:
        return None
    return str(context[name])


def basis_of(context: Mapping[str, Any] | None, call: Call, given: Decimal | None) -> Decimal | None:
    return given if given is not None else holds.context_number(context, entitlement_of(call).estimate_basis)


def learning(call: Call, segment: str | None, basis: Decimal | None, context: Mapping[str, Any] | None) -> holds.Learn:
    ent = entitlement_of(call)
    if basis is None:
        basis = holds.context_number(context, ent.estimate_basis)
    per_basis = ent.estimate_basis is not None
    return holds.Learn(call.entitlement, estimates.segment_key(segment), basis, per_basis, call.value, call.overhead)


def estimate(
    policy: CompiledPolicy,
    call: Call,
    basis: Decimal | None,
    segment: str | None,
    quantile: Decimal,
    table: Any,
) -> Estimate | None:
    """The customer's own estimate after `estimate_min_samples` observations, else the policy-wide one from
    `table` (read before the attempt); None before anything is learned, or per-basis without a basis."""
    key = estimates.segment_key(segment)
    if entitlement_of(call).estimate_basis is not None and (basis is None or basis <= 0):
        return None
    own = call.meter.estimates.get(key) if call.meter is not None else None
    if own is not None and own.samples >= policy.estimate_min_samples:
        return estimates.predict(own, basis, quantile, "customer")
    shared = (table or {}).get(key)
    return None if shared is None else estimates.predict(shared, basis, quantile, "policy")


@dataclass(frozen=True, slots=True)
class Reservation:
    """`reserve`'s arguments, checked."""

    customer: str
    entitlement: str
    quantity: Quantity | None  # None: hold the estimate
    context: Mapping[str, Any] | None
    segment: str | None
    basis: Decimal | None
    quantile: Decimal
    overhead: Decimal | None
    lifetime: timedelta
    hold_id: str
    estimates: Any  # the policy-wide estimates, read before the attempt (when the hold is an estimate)


def reservation(
    policy: CompiledPolicy,
    id: Any,
    entitlement: Any,
    value: Any,
    *,
    context: Any,
    basis: Any,
    segment: Any,
    ttl: Any,
    quantile: Any,
    overhead: Any,
    hold_id: str,
    shared_estimates: Callable[[str], Any],
) -> Reservation:
    """`reserve`'s arguments, checked; a hold of the estimate reads the policy-wide estimates first."""
    ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
    quantity = args.quantity(value) if value is not None else None
    return Reservation(
        ident,
        ent,
        quantity,
        args.context(context),
        args.optional_text(segment, "segment"),
        args.optional_amount(basis, "basis"),
        args.fraction(quantile, "quantile"),
        args.optional_amount(overhead, "overhead"),
        args.duration(ttl, "ttl") if ttl is not None else policy.hold_ttl,
        hold_id,
        shared_estimates(ent) if quantity is None else None,
    )


def reserve(policy: CompiledPolicy, decider: Decider, at: Attempt, now: datetime, r: Reservation) -> str | None:
    call = decider.locate(at.snap, r.customer, r.entitlement, now)
    if call is None:
        return None
    segment = segment_of(r.context, call, r.segment)
    basis = basis_of(r.context, call, r.basis)
    overhead = r.overhead
    quantity = r.quantity
    if quantity is None:
        predicted = estimate(policy, call, basis, segment, r.quantile, r.estimates)
        quantity = Quantity(predicted.value if predicted else call.limit.increment)
        if overhead is None and predicted is not None:
            overhead = predicted.overhead
    request = Request(r.customer, r.entitlement, quantity, 0, False, r.context, overhead)
    ok, changed, held = holds.reserve(decider, at.snap, request, r.hold_id, r.lifetime, basis, segment, now)
    if not ok or held <= 0:
        return None
    at.put_customers(changed)
    return r.hold_id


@dataclass(frozen=True, slots=True)
class Settlement:
    """`settle`'s arguments, checked."""

    request: Request  # forced: the work already happened
    hold_id: str
    segment: str | None
    basis: Decimal | None


def settle(
    policy: CompiledPolicy, decider: Decider, at: Attempt, now: datetime, s: Settlement, learned: list[holds.Learn]
) -> bool:
    """Drop the hold and record the usage, once: the settlement marker (read with the snapshot) is written in
    the same commit and kept past the hold's expiry. What the customer's estimates learned goes to `learned`."""
    learned.clear()
    req = s.request
    marker = keys.settled(req.customer, s.hold_id)
    settled = at.extras[marker]
    if settled is not None and settled["until"] >= now:
        return False  # settled before: a hold resolves once
    outcome, hold = holds.settle(decider, at.snap, req, s.hold_id, now)
    keep_until = (hold.expires if hold is not None else now + policy.hold_ttl) + holds.TOMBSTONE_KEEP
    at.writes[marker] = {"at": now, "until": keep_until}
    at.expires[marker] = keep_until
    at.put_customers(outcome.changed)
    at.events.extend(outcome.events)
    if outcome.allowed:
        after = Snapshot({**at.snap.customers, **outcome.changed}, at.snap.aliases)
        call = decider.locate(after, req.customer, req.entitlement, now, req)
        if call is not None:
            segment = s.segment if s.segment is not None else (hold.segment if hold else None)
            basis = s.basis if s.basis is not None else (hold.basis if hold else None)
            learn = learning(call, segment, basis, req.event_data)
            if holds.learn_customer(outcome.changed, call, learn, now):
                learned.append(learn)
            at.put_customers(outcome.changed)
    return outcome.allowed


def release(decider: Decider, at: Attempt, now: datetime, ident: str, entitlement: str, hold_id: str) -> bool:
    changed = holds.release(decider, at.snap, ident, entitlement, hold_id, now)
    if changed is None:
        return False
    at.put_customers(changed)
    return True


def observe(
    decider: Decider,
    at: Attempt,
    now: datetime,
    request: Request,
    segment: str | None,
    basis: Decimal | None,
    learned: list[holds.Learn],
) -> bool:
    """Learn from one call without a hold: the customer's estimates here, the policy's through `learned`."""
    learned.clear()
    call = decider.locate(at.snap, request.customer, request.entitlement, now, request)
    if call is None:
        return False
    context = request.event_data
    learn = learning(call, segment_of(context, call, segment), basis_of(context, call, basis), context)
    changed: dict[str, CustomerState] = {}
    if not holds.learn_customer(changed, call, learn, now):
        return False
    at.put_customers(changed)
    learned.append(learn)
    return True
