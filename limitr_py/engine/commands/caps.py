"""Spend caps: adding one (its arguments checked into a `CapSpec`), resetting and removing one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import CompiledPolicy
from limitr_py.engine import arguments as args
from limitr_py.engine import customers as ops
from limitr_py.engine.decide import quantity_in
from limitr_py.engine.exchange import RUNE, names_a_credit
from limitr_py.engine.exchange import resolve as resolve_path
from limitr_py.engine.records import plain
from limitr_py.engine.resolve import resolve_customer
from limitr_py.engine.state import ZERO, Cap, without
from limitr_py.engine.txn import Attempt
from limitr_py.errors import InvalidArgumentError
from limitr_py.schedules import Schedule

FLAGS = (
    "ignore_grants",
    "overage_only",
    "observe_only",
    "overhead_cost",
    "follow_decrements",
    "hard_trailing",
    "shared",
)


@dataclass(frozen=True, slots=True)
class CapSpec:
    """`add_customer_cap`'s arguments, checked."""

    id: str
    ceiling: Decimal
    credit: str
    exchangeable: bool
    flags: dict[str, bool]
    resets: bool
    period: timedelta | None
    schedule: Schedule | None
    scope: tuple[str, ...] | None
    shared_with: tuple[str, ...] | None
    expires_on: datetime | None
    events: bool


def spec(
    policy: CompiledPolicy,
    value: Any,
    *,
    cap_id: str | None,
    new_id: str,
    credit: str,
    exchangeable: bool | None,
    flags: dict[str, Any],
    resets: Any,
    reset_inc: Any,
    reset_sch: str | None,
    scope: Iterable[str] | None,
    shared_with: Iterable[str] | None,
    expires_on: datetime | None,
    events: Any,
) -> CapSpec | None:
    """The checked arguments, or None when the cap cannot exist (Limitr's null: a credit without a path to
    runes, or an exchangeable cap that would price through a stairstep curve, which has no per-unit price)."""
    credit = args.ident(credit, "credit")
    checked = {name: args.flag(flags[name], name) for name in FLAGS}
    resets_flag, events_flag = args.flag(resets, "resets"), args.flag(events, "events")
    exchangeable = args.optional_flag(exchangeable, "exchangeable")
    if not names_a_credit(policy, credit):
        return None
    period, schedule = args.reset_clock(reset_inc, reset_sch)
    found = policy.credits.get(credit)
    ceiling = quantity_in(found, args.quantity(value)) if found else args.amount(value, "value")
    if ceiling < 0:
        raise InvalidArgumentError(f"a cap ceiling cannot be negative, got `{value}`")
    if exchangeable is None:
        exchangeable = credit == RUNE or found is None
    if exchangeable and credit != RUNE:
        path = resolve_path(policy, credit)
        if path is not None and path[1] is not None and path[1].model == "stairstep":
            return None
    return CapSpec(
        id=args.ident(cap_id, "cap_id") if cap_id is not None else new_id,
        ceiling=ceiling,
        credit=credit,
        exchangeable=bool(exchangeable),
        flags=checked,
        resets=bool(resets_flag or period or schedule),
        period=period,
        schedule=schedule,
        scope=args.names(scope, "scope") if scope is not None else None,
        shared_with=args.names(shared_with, "shared_with") if shared_with is not None else None,
        expires_on=args.when(expires_on, "expires_on"),
        events=events_flag,
    )


def add(at: Attempt, now: datetime, ident: str, s: CapSpec) -> Cap | None:
    """Give the customer the cap; None when the customer is unknown or already has a cap with this id."""
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if state is None or s.id in state.caps:
        return None
    cap = Cap(
        id=s.id,
        value=s.ceiling,
        credit=s.credit,
        exchangeable=s.exchangeable,
        ignore_grants=s.flags["ignore_grants"],
        overage_only=s.flags["overage_only"],
        observe_only=s.flags["observe_only"],
        overhead_cost=s.flags["overhead_cost"],
        follow_decrements=s.flags["follow_decrements"],
        hard_trailing=s.flags["hard_trailing"],
        shared=s.flags["shared"],
        shared_with=s.shared_with,
        scope=s.scope,
        created_on=now,
        started=now,
        resets=s.resets,
        reset_inc=s.period,
        reset_sch=s.schedule,
        last_reset=s.schedule.start_of_period(now) if s.schedule else None,
        expires_on=s.expires_on,
    )
    copy = state.copy()
    copy.caps = {**copy.caps, s.id: cap}
    at.put_customers({copy.id: copy})
    if s.events:
        at.events.append(("customer-cap-added", {"customer": copy.id, "cap": plain(cap)}))
        at.events.append(("customer-set", ops.customer_payload(copy)))
    return cap


def change(at: Attempt, now: datetime, ident: str, cap_id: str, events: bool, *, remove: bool) -> bool:
    """Reset (zero its meter, start its period now) or remove one of the customer's caps."""
    state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
    if state is None or cap_id not in state.caps:
        return False
    copy = state.copy()
    cap = copy.caps[cap_id]
    copy.caps = without(copy.caps, cap_id)  # a reset cap moves to the end, as it always did
    if not remove:
        cap = replace(cap, meter_value=ZERO, started=now, last_reset=now if cap.reset_sch else None)
        copy.caps = {**copy.caps, cap_id: cap}
    at.put_customers({copy.id: copy})
    if events:
        if remove:
            at.events.append(("customer-cap-removed", {"customer": copy.id, "id": cap_id}))
        else:
            at.events.append(("customer-cap-reset", {"customer": copy.id, "cap": plain(cap)}))
        at.events.append(("customer-set", ops.customer_payload(copy)))
    return True
