"""Spend caps (reference/limitr.md §2.10, §3.5): which apply to a call and how much of them it consumes.

A cap's consumption is computed by one function for both the gates and the commit, so the amount a gate lets
through is the amount the commit adds: caps and meter move together or not at all, and an enforcing cap never
ends a call above its ceiling (unless `hard_trailing` lets one call cross, or the call is forced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from limitr_py.compile.graph import DEFAULT_PERIOD, CompiledPolicy, Pricing
from limitr_py.engine.exchange import RUNE, from_runes, to_runes
from limitr_py.engine.meters import periods_passed
from limitr_py.engine.pricing import UNBOUNDED_QUANTITY
from limitr_py.engine.resolve import Customers, reachable
from limitr_py.engine.state import ZERO, Cap, CustomerState, as_of, evolve


@dataclass(frozen=True, slots=True)
class Spend:
    """What a call adds, in the numbers caps look at (with holds for the gates, without for the commit)."""

    value: Decimal  # units (signed)
    rate: Decimal  # provider cost per unit, runes
    overhead: Decimal  # provider cost of the call, runes (what an overhead-only call records)
    position: Decimal  # meter − limit before the call (negative = inside the included amount)
    billable: Decimal  # max(0, position)
    billable_diff: Decimal  # change of the billable (past-the-limit) quantity
    covered: Decimal  # units covered by grants


@dataclass(frozen=True, slots=True)
class Applicable:
    holder: str | None  # customer holding the cap (None for call-scoped caps)
    cap: Cap


def current(cap: Cap, now: datetime) -> Cap | None:
    """The cap as of `now`: None once expired; a finished period zeroes its meter (no rollover)."""
    if cap.expires_on is not None and cap.expires_on < now:
        return None
    if not cap.resets:
        return cap
    if cap.reset_sch is not None:
        start = cap.reset_sch.start_of_period(now)
        if cap.last_reset is None or cap.last_reset < start:
            return evolve(cap, last_reset=start, meter_value=ZERO)
        return cap
    period = cap.reset_inc or DEFAULT_PERIOD
    started = cap.started or cap.created_on or now
    periods = periods_passed(started, period, now)
    if periods <= 0:
        return cap
    return evolve(cap, started=started + period * periods, meter_value=ZERO)


def make_current(table: Mapping[str, Cap], now: datetime) -> tuple[dict[str, Cap], bool]:
    """Every cap as of `now` (expired ones dropped) and whether anything changed."""
    return as_of(table, current, now)


def holders(customers: Customers, caller: CustomerState) -> list[tuple[CustomerState, bool]]:
    """(customer, own) for the caller and every customer reachable through its refs, each once."""
    return [(caller, True), *((c, False) for c in reachable(customers, caller))]


def applies(policy: CompiledPolicy, cap: Cap, entitlement: str, credit: str, pricing: Pricing | None) -> bool:
    """Scope, exchangeability and a conversion path (an unbounded conversion makes a cap meaningless)."""
    if cap.scope and entitlement not in cap.scope:
        return False
    if not cap.exchangeable and cap.credit != credit:
        return False
    if cap.credit == credit:
        return True
    if to_runes(policy, Decimal(1), credit, ZERO, pricing) is None:
        return False
    per_rune = from_runes(policy, Decimal(1), cap.credit)
    return per_rune is not None and per_rune < UNBOUNDED_QUANTITY


def visible(cap: Cap, own: bool, caller_type: str) -> bool:
    """The caller's own caps always apply; another customer's only when shared with the caller's type."""
    return own or (cap.shared and (not cap.shared_with or caller_type in cap.shared_with))


def _to_cap(
    policy: CompiledPolicy, cap: Cap, credit: str, pricing: Pricing | None, units: Decimal, offset: Decimal
) -> Decimal:
    if cap.credit == credit:
        return units
    runes = to_runes(policy, units, credit, offset, pricing)
    if runes is None:
        return ZERO
    if cap.credit == RUNE:
        return runes
    out = from_runes(policy, runes, cap.credit)
    return out if out is not None else ZERO


def consumption(policy: CompiledPolicy, cap: Cap, credit: str, pricing: Pricing | None, s: Spend) -> Decimal:
    """How much of `cap` (in its credit) the spend `s` consumes.

    - `overhead_cost`: the provider cost of the counted units (an overhead-only call counts its overhead, except
      on overage-only caps);
    - `overage_only`: the billable units the call adds past the included amount (in-plan usage never counts);
    - otherwise every unit, priced from the customer's position (included units at the first tier's rate);
    - `ignore_grants` takes out the units grants covered (they are not billed).
    """
    covered = s.covered if cap.ignore_grants else ZERO
    if cap.overhead_cost:
        if s.value == 0:
            runes = ZERO if cap.overage_only else s.overhead
        else:
            units = (s.billable_diff if cap.overage_only else s.value) - covered
            runes = units * s.rate if units > 0 or s.value < 0 else ZERO
        return runes if cap.credit == RUNE else (from_runes(policy, runes, cap.credit) or ZERO)
    if cap.overage_only:
        units = s.billable_diff - covered
        if units <= 0 and s.value > 0:
            return ZERO
        return _to_cap(policy, cap, credit, pricing, units, s.billable + covered)
    amount = _to_cap(policy, cap, credit, pricing, s.value, s.position)
    if covered > 0:
        amount = max(ZERO, amount - _to_cap(policy, cap, credit, pricing, covered, s.billable))
    return amount


def has_room(cap: Cap, amount: Decimal) -> bool:
    if cap.observe_only:
        return True
    if cap.hard_trailing:
        return amount <= 0 or cap.meter_value < cap.value
    return cap.meter_value + amount <= cap.value


def call_caps(cap_arg: object) -> tuple[Cap, ...]:
    """Call-scoped caps: a Cap, or a mapping credit → ceiling (each a temporary cap `tmp-<credit>`)."""
    if cap_arg is None:
        return ()
    if isinstance(cap_arg, Cap):
        return (evolve(cap_arg, temp=True),)
    assert isinstance(cap_arg, Mapping)
    return tuple(
        Cap(id=f"tmp-{credit}", value=ceiling, credit=credit, temp=True) for credit, ceiling in cap_arg.items()
    )
