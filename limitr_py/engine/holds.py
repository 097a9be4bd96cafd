"""Reservations and learning (reference/limitr.md §1.1 Reservations, §3.7), TigerBeetle-style.

A hold is a pending amount on its meter: it counts against that meter's limit and caps, is never billed, and
resolves exactly once — `settle` turns it into recorded usage (forced, as the work already happened), `release`
drops it, expiry forgets it. The engine records each settled hold id in the store (in the settle's own commit,
kept for TOMBSTONE_KEEP past the hold's expiry), so a second settle of the same hold records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from limitr_py.engine import estimates, meters
from limitr_py.engine.decide import Call, Decider, Outcome, Request, Snapshot, editable
from limitr_py.engine.state import ZERO, CustomerState, EstimateState, Hold, MeterState

TOMBSTONE_KEEP = timedelta(days=7)
"""How long after its expiry a settled hold is remembered (a settle retried later than that records again)."""


@dataclass(frozen=True, slots=True)
class Learn:
    """One observation to learn from: the entitlement's segment key, the basis, and the call's numbers."""

    entitlement: str
    segment: str
    basis: Decimal | None
    per_basis: bool
    value: Decimal
    overhead: Decimal


def context_number(context: Mapping[str, Any] | None, name: str | None) -> Decimal | None:
    if context is None or name is None:
        return None
    raw = context.get(name)
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        return None
    try:
        number = Decimal(str(raw))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def reserve(
    decider: Decider,
    snap: Snapshot,
    req: Request,
    hold_id: str,
    ttl: timedelta,
    basis: Decimal | None,
    segment: str | None,
    now: datetime,
) -> tuple[bool, dict[str, CustomerState], Decimal]:
    """Hold `req.value` if a check with it (other holds included) passes. Returns (held, changed, value)."""
    decision = decider.check(snap, req, now, explain=False)
    call = decider.locate(snap, req.customer, req.entitlement, now, req)
    if not decision.allowed or call is None:
        return False, {}, ZERO
    changed: dict[str, CustomerState] = {}
    meter = Decider.writable_meter(changed, call, now)
    meter.holds = {**meters.live_holds(meter, now), hold_id: Hold(call.value, call.overhead, now + ttl, basis, segment)}
    return True, changed, call.value


def settle(decider: Decider, snap: Snapshot, req: Request, hold_id: str, now: datetime) -> tuple[Outcome, Hold | None]:
    """Drop the hold (if it is still there) and record the actual usage with force."""
    call = decider.locate(snap, req.customer, req.entitlement, now, req)
    if call is None:
        return decider.allow(snap, req, now), None
    meter = call.meter
    hold = meter.holds.get(hold_id) if meter is not None else None
    owner = call.owner.copy()
    fresh = meter.copy() if meter is not None else MeterState(call.limit.credit, now)
    fresh.holds = {k: v for k, v in fresh.holds.items() if k != hold_id}
    owner.meters[call.entitlement] = fresh
    outcome = decider.allow(Snapshot({**snap.customers, owner.id: owner}, snap.aliases), req, now)
    outcome.changed.setdefault(owner.id, owner)
    return outcome, hold


def release(
    decider: Decider, snap: Snapshot, customer: str, entitlement: str, hold_id: str, now: datetime
) -> dict[str, CustomerState] | None:
    call = decider.locate(snap, customer, entitlement, now)
    if call is None or call.meter is None or hold_id not in call.meter.holds:
        return None
    changed: dict[str, CustomerState] = {}
    meter = Decider.writable_meter(changed, call, now)
    meter.holds = {k: v for k, v in meter.holds.items() if k != hold_id}
    return changed


def learn_customer(changed: dict[str, CustomerState], call: Call, learn: Learn, now: datetime) -> bool:
    """Teach the meter owner's own estimate; False when a per-basis estimate got no basis."""
    owner = editable(changed, call.owner)
    meter = owner.meters.get(call.entitlement)
    meter = meter.copy() if meter is not None else MeterState(call.limit.credit, now)
    owner.meters[call.entitlement] = meter
    learned = estimates.observe(
        meter.estimates.get(learn.segment, EstimateState()),
        learn.value,
        learn.overhead,
        learn.basis,
        learn.per_basis,
        now,
    )
    if learned is None:
        return False
    meter.estimates = {**meter.estimates, learn.segment: learned}
    return True


def learn_policy(table: Mapping[str, EstimateState] | None, learn: Learn, now: datetime) -> dict[str, EstimateState]:
    out = dict(table or {})
    learned = estimates.observe(
        out.get(learn.segment, EstimateState()), learn.value, learn.overhead, learn.basis, learn.per_basis, now
    )
    if learned is not None:
        out[learn.segment] = learned
    return out
