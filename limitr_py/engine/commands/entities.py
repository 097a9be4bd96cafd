"""Entities (Autumn, Owostack): customers of a customer, that may each take one unit of a feature (a seat)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import CompiledPolicy
from limitr_py.engine import customers as ops
from limitr_py.engine import keys
from limitr_py.engine.decide import Decider, Request
from limitr_py.engine.resolve import plan_for, resolve_customer
from limitr_py.engine.state import CustomerState
from limitr_py.engine.txn import Attempt
from limitr_py.units import Quantity


def add(
    policy: CompiledPolicy,
    decider: Decider,
    at: Attempt,
    now: datetime,
    ident: str,
    entity_id: str,
    feature: str | None,
    fields: Mapping[str, Any],
    events_on: bool,
    probe: bool,
) -> bool:
    """Create the entity (its record is read with the snapshot: `keys.customer(entity_id)`); with `feature` it
    takes one unit of it on the customer, through the same decision as `allow`, or nothing is created."""
    parent = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if parent is None or at.extras[keys.customer(entity_id)] is not None:
        return False
    changed: dict[str, CustomerState] = {}
    if feature is not None:
        request = Request(parent.id, feature, Quantity(Decimal(1)), 0, events_on, probe=probe)
        outcome = decider.allow(at.snap, request, now)
        at.events.extend(outcome.events)
        if not outcome.allowed:
            return False
        changed.update(outcome.changed)
    holder = changed.get(parent.id) or parent.copy()
    holder.entities = (*holder.entities, entity_id)
    changed[parent.id] = holder
    entity = CustomerState(
        id=entity_id,
        plan="",
        type=fields["type"],
        label=fields["label"] or entity_id,
        refs=(parent.id,),
        metadata=fields["metadata"] or {},
        created=now,
        parent=parent.id,
    )
    plan = plan_for(policy, {**at.snap.customers, **changed, entity_id: entity}, entity)
    if plan is not None:
        ops.start_meters(plan, entity, now)
    changed[entity_id] = entity
    at.put_customers(changed)
    at.events.append(("customer-set", ops.customer_payload(entity)))
    return True


def remove(
    decider: Decider, at: Attempt, now: datetime, ident: str, entity_id: str, feature: str | None, events_on: bool
) -> bool:
    """Delete an entity of the customer; with `feature`, give its unit back."""
    parent = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    entity = at.extras[keys.customer(entity_id)]
    if parent is None or entity is None or entity.parent != parent.id:
        return False
    changed: dict[str, CustomerState] = {}
    if feature is not None:
        outcome = decider.allow(at.snap, Request(parent.id, feature, Quantity(Decimal(-1)), 0, events_on), now)
        changed.update(outcome.changed)
        at.events.extend(outcome.events)
    holder = changed.get(parent.id) or parent.copy()
    holder.entities = tuple(e for e in holder.entities if e != entity_id)
    changed[parent.id] = holder
    at.put_customers({**changed, entity_id: None})
    at.put_aliases({alt: None for alt in entity.alt_ids})
    at.events.append(("customer-removed", ops.customer_payload(entity)))
    return True
