"""Customers: creating, deleting, restoring, changing plan, refs, alt ids and per-customer overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from limitr_py.compile.graph import MODES, CompiledPolicy, Limit, Mode
from limitr_py.engine import arguments as args
from limitr_py.engine import customers as ops
from limitr_py.engine import keys
from limitr_py.engine.decide import quantity_in
from limitr_py.engine.resolve import plan_for, resolve_customer
from limitr_py.engine.state import ZERO, CustomerState, Override, without
from limitr_py.engine.txn import Attempt
from limitr_py.engine.values import Customer
from limitr_py.errors import InvalidArgumentError
from limitr_py.schedules import Schedule
from limitr_py.units import Quantity

Change = Callable[[CustomerState, Attempt, datetime], bool]
"""A change to a copy of one customer; True when it changed something worth writing."""


def fields(
    policy: CompiledPolicy,
    plan: Any,
    type: Any,
    label: Any,
    refs: Any,
    alt_ids: Any,
    metadata: Any,
) -> dict[str, Any]:
    """`create_customer`'s arguments, checked: an unknown plan is an error, `""` means "resolve one"."""
    return {
        "plan": args.known(plan, policy.plans, "plan") if plan != "" else "",
        "type": args.text(type, "type"),
        "label": args.text(label, "label"),
        "refs": args.names(refs, "refs"),
        "alt_ids": args.names(alt_ids, "alt_ids"),
        "metadata": args.optional_data(metadata, "metadata") or None,
    }


def create(policy: CompiledPolicy, at: Attempt, now: datetime, ident: str, fields: dict[str, Any]) -> Customer | None:
    """Create the customer (or update an existing one's fields); its refs and its alt ids' alias records were
    read with the snapshot. None when no plan resolves."""
    group = dict(at.snap.customers)  # the customer (if it exists), its refs and theirs, read together
    state, change = ops.create(policy, group, id=ident, now=now, **fields)
    if state is None:
        return None
    for alt in list(change.aliases):
        owner = at.extras[keys.alias(alt)]
        if owner not in (None, ident) or (alt in group and alt != ident):
            raise InvalidArgumentError(f"alt id `{alt}` already belongs to customer `{owner or alt}`")
    at.put_customers(change.customers)
    at.put_aliases(change.aliases)
    at.events.extend(change.events)
    return ops.public(state)


def delete(at: Attempt, now: datetime, ident: str) -> bool:
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if state is None:
        return False
    at.put_customers({state.id: None})
    at.put_aliases({alt: None for alt in state.alt_ids})
    at.events.append(("customer-removed", ops.customer_payload(state)))
    return True


def restore(at: Attempt, now: datetime, state: CustomerState) -> Customer:
    """Insert or replace a customer from an exported record; alt ids it no longer has are released."""
    old = at.snap.customers.get(state.id)
    at.put_customers({state.id: state})
    at.put_aliases({alt: None for alt in (old.alt_ids if old else ()) if alt not in state.alt_ids})
    at.put_aliases({alt: state.id for alt in state.alt_ids})
    at.events.append(("customer-set", ops.customer_payload(state)))
    return ops.public(state)


def update(at: Attempt, now: datetime, ident: str, change: Change) -> bool:
    """Apply `change` to a copy of the customer; write it and send `customer-set` when it returns True."""
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if state is None:
        return False
    copy = state.copy()
    if not change(copy, at, now):
        return False
    at.put_customers({copy.id: copy})
    at.events.append(("customer-set", ops.customer_payload(copy)))
    return True


def set_plan(policy: CompiledPolicy, at: Attempt, now: datetime, ident: str, plan: str, overwrite: bool) -> bool:
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if state is None:
        return False
    change = ops.set_plan(policy, at.snap.customers, state, plan, overwrite, now)
    if change is None:
        return False
    at.put_customers(change.customers)
    at.events.extend(change.events)
    return True


def add_alt_id(at: Attempt, now: datetime, ident: str, alt: str) -> bool:
    """Let `alt` name the customer too (its alias and any customer named `alt` were read with the snapshot)."""
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if state is None or at.extras[keys.customer(alt)] is not None:
        return False
    if at.extras[keys.alias(alt)] not in (None, state.id):
        return False
    copy = state.copy()
    if alt not in copy.alt_ids:
        copy.alt_ids = (*copy.alt_ids, alt)
    at.put_customers({copy.id: copy})
    at.put_aliases({alt: copy.id})
    at.events.append(("customer-set", ops.customer_payload(copy)))
    return True


def delete_alt_id(at: Attempt, now: datetime, alt: str) -> bool:
    target = at.snap.aliases.get(alt)
    state = at.snap.customers.get(target) if target else None
    if state is None:
        return False
    copy = state.copy()
    copy.alt_ids = tuple(a for a in copy.alt_ids if a != alt)
    at.put_customers({copy.id: copy})
    at.put_aliases({alt: None})
    at.events.append(("customer-set", ops.customer_payload(copy)))
    return True


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    """`create_customer_override`'s arguments, checked; unset fields copy the limit in force."""

    entitlement: str
    credit: str | None
    mode: Mode | None
    value: Quantity | None
    increment: Quantity | None
    resets: bool | None
    period: timedelta | None
    schedule: Schedule | None
    expires: datetime | None


def override_spec(
    entitlement: Any,
    *,
    expires: Any,
    credit: Any,
    mode: Any,
    value: Any,
    increment: Any,
    resets: Any,
    reset_inc: Any,
    reset_sch: Any,
) -> OverrideSpec:
    """`create_customer_override`'s arguments, checked."""
    period, schedule = args.reset_clock(reset_inc, reset_sch)
    return OverrideSpec(
        entitlement=args.ident(entitlement, "entitlement"),
        credit=args.optional_ident(credit, "credit"),
        mode=args.one_of(mode, MODES, "mode") if mode is not None else None,
        value=args.quantity(value) if value is not None else None,
        increment=args.quantity(increment, "increment") if increment is not None else None,
        resets=args.optional_flag(resets, "resets"),
        period=period,
        schedule=schedule,
        expires=args.when(expires, "expires"),
    )


def override(policy: CompiledPolicy, spec: OverrideSpec, made: list[Limit]) -> Change:
    """The change that gives a customer its own limit for an entitlement (the new limit goes to `made`)."""

    def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
        plan = plan_for(policy, at.snap.customers, c)
        ent = plan.entitlements.get(spec.entitlement) if plan else None
        if ent is None:
            return False
        base = c.overrides[spec.entitlement].limit if spec.entitlement in c.overrides else ent.limit
        found = policy.credits.get(spec.credit or (base.credit if base else None) or "")
        if found is None:
            return False
        own_clock = spec.period is not None or spec.schedule is not None
        limit = Limit(
            credit=found.name,
            mode=spec.mode or (base.mode if base else "hard"),
            value=quantity_in(found, spec.value) if spec.value is not None else (base.value if base else ZERO),
            increment=(
                quantity_in(found, spec.increment) if spec.increment is not None else (base.increment if base else ZERO)
            ),
            resets=spec.resets if spec.resets is not None else (base.resets if base else False),
            reset_inc=spec.period if own_clock else (base.reset_inc if base else None),
            reset_sch=spec.schedule if own_clock else (base.reset_sch if base else None),
        )
        c.overrides = {**c.overrides, spec.entitlement: Override(limit, spec.expires)}
        made.append(limit)
        return True

    return change


def set_refs(refs: tuple[str, ...]) -> Change:
    """The change replacing a customer's refs."""

    def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
        c.refs = refs
        return True

    return change


def remove_override(entitlement: str) -> Change:
    """The change dropping a customer's override of an entitlement (False when it has none)."""

    def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
        if entitlement not in c.overrides:
            return False
        c.overrides = without(c.overrides, entitlement)
        return True

    return change
