"""Grants and top-ups: promo credit given to a customer, a purchased top-up, and included top-ups kept in step
with the plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import CompiledPolicy
from limitr_py.engine import arguments as args
from limitr_py.engine import grants as grants_mod
from limitr_py.engine.commands.customers import Change
from limitr_py.engine.decide import quantity_in
from limitr_py.engine.exchange import names_a_credit
from limitr_py.engine.records import plain
from limitr_py.engine.resolve import plan_for, resolve_customer
from limitr_py.engine.state import CustomerState, Grant
from limitr_py.engine.txn import Attempt
from limitr_py.errors import InvalidArgumentError


@dataclass(frozen=True, slots=True)
class GrantSpec:
    id: str
    credit: str
    value: Decimal
    expires_on: datetime | None
    metadata: dict[str, Any] | None


def spec(
    policy: CompiledPolicy, credit: Any, value: Any, expires_on: Any, grant_id: Any, metadata: Any, new_id: str
) -> GrantSpec | None:
    """`grant`'s arguments, checked; None when `credit` is unknown (Limitr's null, not an error)."""
    name = args.ident(credit, "credit")
    if not names_a_credit(policy, name):
        return None
    found = policy.credits.get(name)
    amount = quantity_in(found, args.quantity(value)) if found else args.amount(value, "value")
    if amount <= 0:
        raise InvalidArgumentError(f"a grant must be positive, got `{value}`")
    return GrantSpec(
        args.ident(grant_id, "grant_id") if grant_id is not None else new_id,
        name,
        amount,
        args.when(expires_on, "expires_on"),
        args.optional_data(metadata, "metadata"),
    )


def grant(spec: GrantSpec, made: list[Grant]) -> Change:
    """The change giving a customer the grant (False when it already has one with this id)."""

    def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
        if spec.id in c.grants:
            return False
        g = Grant(
            id=spec.id,
            credit=spec.credit,
            value=spec.value,
            starting_value=spec.value,
            created_on=now,
            granted_on=now,
            expires_on=spec.expires_on,
            metadata=spec.metadata or None,
        )
        c.grants = {**c.grants, spec.id: g}
        made.append(g)
        return True

    return change


def apply_topup(policy: CompiledPolicy, at: Attempt, now: datetime, ident: str, name: str, grant_id: str) -> bool:
    """One purchase of a top-up of the customer's plan, as a grant."""
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    plan = plan_for(policy, at.snap.customers, state) if state else None
    found = plan.topups.get(name) if plan else None
    if state is None or plan is None or found is None:
        return False
    copy = state.copy()
    copy.grants = {**copy.grants, grant_id: grants_mod.from_topup(found, grant_id, now)}
    at.put_customers({copy.id: copy})
    at.events.append(
        (
            "customer-topup-granted",
            {"customer": copy.id, "topup_name": name, "plan_name": plan.name, "topup": plain(found)},
        )
    )
    return True


def reconcile_topups(policy: CompiledPolicy) -> Change:
    """The change that drops top-up grants the plan no longer has and grants missing included top-ups."""

    def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
        reconciled, moved = grants_mod.reconcile_topups(plan_for(policy, at.snap.customers, c), c.type, c.grants, now)
        c.grants = reconciled
        return moved

    return change
