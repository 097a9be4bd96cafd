"""Who, which plan, which entitlement, which limit (reference/limitr.md §3.1). Pure lookups over a snapshot."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import lru_cache

from limitr_py.compile.graph import CompiledPolicy, Entitlement, Limit, Plan
from limitr_py.engine.state import CustomerState

Customers = Mapping[str, CustomerState]


def plan_for(policy: CompiledPolicy, customers: Customers, customer: CustomerState) -> Plan | None:
    """The customer's plan; else the first ref (depth-first, in refs order) that has one; else the default."""
    seen: set[str] = set()

    def walk(c: CustomerState) -> Plan | None:
        if c.id in seen:
            return None
        seen.add(c.id)
        plan = policy.plans.get(c.plan)
        if plan is not None:
            return plan
        for ref in c.refs:
            found = customers.get(ref)
            if found is not None and (plan := walk(found)) is not None:
                return plan
        return None

    return walk(customer) or _default_plan(policy)


@lru_cache(maxsize=64)
def _default_plan(policy: CompiledPolicy) -> Plan | None:
    """The policy's default plan, found once (compiled policies are immutable and hashed by identity)."""
    return policy.default_plan


def scope_owner(customers: Customers, caller: CustomerState, scope: str | None) -> CustomerState | None:
    """The customer whose meter a scoped entitlement uses: the caller if its type matches, else the nearest
    customer of that type through refs (breadth-first, each once, cycles skipped); None when there is none."""
    if scope is None or scope == caller.type:
        return caller
    return next((c for c in up_refs(customers, caller) if c.type == scope), None)


def reachable(customers: Customers, caller: CustomerState) -> list[CustomerState]:
    """Every customer reachable through the caller's refs, breadth-first, the caller excluded."""
    return list(up_refs(customers, caller))


def up_refs(customers: Customers, caller: CustomerState) -> Iterator[CustomerState]:
    """Customers reachable through refs, nearest first (breadth-first), each once, the caller excluded."""
    seen = {caller.id}
    queue = deque(caller.refs)
    while queue:
        ref = queue.popleft()
        if ref in seen:
            continue
        seen.add(ref)
        found = customers.get(ref)
        if found is not None:
            yield found
            queue.extend(found.refs)


def limit_for(owner: CustomerState, entitlement: Entitlement, now: datetime) -> tuple[Limit | None, bool]:
    """(the limit in force, whether an expired override must be removed). Overrides expire strictly after."""
    override = owner.overrides.get(entitlement.name)
    if override is None:
        return entitlement.limit, False
    if override.expires is not None and override.expires < now:
        return entitlement.limit, True
    return override.limit, False


def resolve_customer(customers: Customers, aliases: Mapping[str, str], ident: str) -> CustomerState | None:
    found = customers.get(ident)
    if found is None and ident in aliases:
        found = customers.get(aliases[ident])
    return found
