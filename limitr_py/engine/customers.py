"""Customer lifecycle as pure functions over a snapshot (reference/limitr.md §1.1 Customers).

Each returns the customers to write (copies), alias changes, and the events to publish after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from limitr_py.compile.graph import CompiledPolicy, Plan
from limitr_py.engine import grants
from limitr_py.engine.resolve import plan_for
from limitr_py.engine.state import BillingState, CustomerState, MeterState, evolve
from limitr_py.engine.values import BillingConfig, Customer
from limitr_py.event_names import EventName

RawEvent = tuple[EventName, dict[str, Any]]


@dataclass(slots=True)
class Change:
    """What a customer operation writes: customers (None deletes), aliases (None deletes), events."""

    customers: dict[str, CustomerState | None] = field(default_factory=dict)
    aliases: dict[str, str | None] = field(default_factory=dict)
    events: list[RawEvent] = field(default_factory=list)


def public(state: CustomerState, billing: BillingConfig | None = None) -> Customer:
    return Customer(
        state.id,
        state.plan,
        state.type,
        state.label,
        state.refs,
        state.alt_ids,
        dict(state.metadata),
        billing if billing is not None else BillingConfig(),
    )


def customer_payload(state: CustomerState) -> dict[str, Any]:
    """The `customer-set` / `customer-removed` payload: the customer's public fields."""
    return {
        "id": state.id,
        "plan": state.plan,
        "type": state.type,
        "label": state.label,
        "refs": list(state.refs),
        "alt_ids": list(state.alt_ids),
        "metadata": dict(state.metadata),
    }


def start_meters(
    plan: Plan, state: CustomerState, now: datetime, *, replace: bool = False, started: datetime | None = None
) -> None:
    """Give `state` a meter for every limited entitlement of `plan` (only missing ones unless `replace`)."""
    for name, ent in plan.entitlements.items():
        if ent.limit is None or (name in state.meters and not replace):
            continue
        state.meters[name] = MeterState(ent.limit.credit, started or now)


def create(
    policy: CompiledPolicy,
    customers: Mapping[str, CustomerState],
    *,
    id: str,
    plan: str,
    type: str,
    label: str,
    refs: tuple[str, ...],
    alt_ids: tuple[str, ...],
    metadata: dict[str, Any] | None,
    now: datetime,
) -> tuple[CustomerState | None, Change]:
    """Create a customer (meters started now) or update an existing one's fields (no new meters)."""
    change = Change()
    existing = customers.get(id)
    if existing is not None:
        state = existing.copy()
        state.type, state.label, state.refs = type, label, refs
        if metadata is not None:
            state.metadata = dict(metadata)
        if plan:
            state.plan = plan if plan in policy.plans else state.plan
    else:
        state = CustomerState(
            id=id,
            plan=plan if plan in policy.plans else "",
            type=type,
            label=label,
            refs=refs,
            alt_ids=(),
            metadata=dict(metadata or {}),
            created=now,
        )
    view = {**customers, id: state}
    resolved = plan_for(policy, view, state)
    if resolved is None:
        return None, Change()
    if existing is None:
        start_meters(resolved, state, now)
        state.billing_anchor = now if resolved.price is not None else None
        state.grants, _ = grants.reconcile_topups(resolved, state.type, state.grants, now)
    for alt in alt_ids:
        if alt not in state.alt_ids and alt != id:
            state.alt_ids = (*state.alt_ids, alt)
            change.aliases[alt] = id
    change.customers[id] = state
    change.events.append(("customer-set", customer_payload(state)))
    return state, change


def set_plan(
    policy: CompiledPolicy,
    customers: Mapping[str, CustomerState],
    state: CustomerState,
    plan: str,
    overwrite_meters: bool,
    now: datetime,
) -> Change | None:
    """Move a customer to `plan`. New meters start with the earliest period of the meters it keeps, so their
    periods stay aligned; with `overwrite_meters` every meter of the new plan starts again."""
    new_plan = policy.plans.get(plan)
    if new_plan is None or state.plan == plan:
        return None
    previous = plan_for(policy, customers, state)
    copy = state.copy()
    starts = [
        m.started
        for name, m in state.meters.items()
        if m.started is not None and previous is not None and name in previous.entitlements
    ]
    copy.plan = plan
    start_meters(new_plan, copy, now, replace=overwrite_meters, started=min(starts) if starts else now)
    # Usage-limit windows follow the feature's reset cycle (seed 004, controls.cycle_anchor): restarted meters
    # start their windows' counters afresh; a moved billing anchor re-phases the windows that follow it (a window
    # whose start moved counts from zero); windows of kept meters go on.
    copy.billing_anchor = now if new_plan.price is not None else None
    if overwrite_meters:
        copy.billing = replace(copy.billing, windows={})
    change = Change(customers={state.id: copy})
    change.events.append(("customer-set", customer_payload(copy)))
    change.events.append(
        (
            "customer-plan-changed",
            {"previous_plan": previous.name if previous else state.plan, "new_plan": plan, "customer": state.id},
        )
    )
    return change


def plan_fee_due(policy: CompiledPolicy, state: CustomerState, now: datetime) -> str | None:
    """The entitlement to increment to charge the plan fee once (`ensure_plan_subscription`): the customer's
    own plan's `subscription`, when its meter is below 1 and the trial is over; else None."""
    plan = policy.plans.get(state.plan)
    meter = state.meters.get(plan.subscription) if plan else None
    if plan is None or meter is None or meter.value >= 1 or meter.started is None:
        return None
    if plan.trial_period is not None and now - meter.started < plan.trial_period:
        return None
    return plan.subscription


def detached(state: CustomerState) -> CustomerState:
    """A copy of a stored state deep enough that changing it changes nothing stored (the engine shares the
    tables it never changes in place; a caller might change them)."""
    meters = {}
    for name, meter in state.meters.items():
        meters[name] = copied = meter.copy()
        copied.holds, copied.estimates = dict(meter.holds), dict(meter.estimates)
    copy = state.copy()
    copy.meters, copy.metadata, copy.overrides = meters, dict(state.metadata), dict(state.overrides)
    copy.grants, copy.caps, copy.billing = dict(state.grants), dict(state.caps), _detached_billing(state.billing)
    return copy


def _detached_billing(billing: BillingState) -> BillingState:
    tables: dict[str, Any] = {
        f.name: dict(v) for f in fields(billing) if isinstance(v := getattr(billing, f.name), dict)
    }
    return evolve(billing, **tables)
