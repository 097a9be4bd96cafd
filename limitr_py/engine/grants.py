"""Grants: balances that cover usage past a limit (reference/limitr.md §2.11 Grant, §3.4).

Pure functions over a customer's grants (an insertion-ordered mapping id → frozen Grant): make them current
(expiry, resets in `hard` / `add` / `rollover` mode), reconcile top-up grants with the plan, measure the balance
in a credit, and draw it down. Nothing here mutates its input; changed grants come back in a new mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from limitr_py.compile.graph import DEFAULT_PERIOD, CompiledPolicy, Plan, Topup
from limitr_py.engine.exchange import exchange, from_runes, resolve, to_runes
from limitr_py.engine.meters import periods_passed
from limitr_py.engine.state import ZERO, Grant, as_of, evolve

Grants = Mapping[str, Grant]
_US = timedelta(microseconds=1)
MAX_CATCHUP = 1000
"""Most missed periods replayed at once when a grant sets no `reset_catchup_cap` (years of daily resets)."""


def from_topup(topup: Topup, grant_id: str, now: datetime) -> Grant:
    """A grant following its top-up's definition, starting full."""
    calendar = topup.reset_sch is not None
    return Grant(
        id=grant_id,
        credit=topup.credit,
        value=topup.value,
        starting_value=topup.value,
        created_on=now,
        granted_on=now,
        topup=topup.name,
        resets=topup.resets,
        reset_inc=topup.reset_inc,
        reset_sch=topup.reset_sch,
        last_reset=topup.reset_sch.start_of_period(now) if calendar and topup.reset_sch else None,
        expires_on=now + topup.expires_after if topup.expires_after else None,
        reset_mode=topup.reset_mode,
        rollover_min=topup.rollover_min,
        rollover_max=topup.rollover_max,
        rollover_pct=topup.rollover_pct,
        max_balance=topup.max_balance,
        reset_catchup_cap=topup.reset_catchup_cap,
    )


def _refill(g: Grant, value: Decimal) -> Decimal:
    """The balance after one period reset, by the grant's mode, clamped to `max_balance`."""
    if g.reset_mode == "add":
        value = value + g.starting_value
    elif g.reset_mode == "rollover":
        carry = max(ZERO, value) * (g.rollover_pct if g.rollover_pct is not None else Decimal(1))
        if g.rollover_min is not None:
            carry = max(carry, g.rollover_min)
        if g.rollover_max is not None:
            carry = min(carry, g.rollover_max)
        value = g.starting_value + carry
    else:
        value = g.starting_value
    return value if g.max_balance is None else min(value, g.max_balance)


def _refills(g: Grant, value: Decimal, periods: int) -> Decimal:
    """`periods` resets in a row; only the first `reset_catchup_cap` refill (Limitr's catch-up cap)."""
    cap = g.reset_catchup_cap if g.reset_catchup_cap is not None else MAX_CATCHUP
    for _ in range(min(periods, cap)):
        value = _refill(g, value)
    return value


def current(g: Grant, now: datetime) -> Grant | None:
    """The grant as of `now`: None once expired; every period that ended since its last reset is replayed.

    Rolling periods follow Limitr (`while now − granted_on > period`). Calendar periods are replayed one by
    one too, where Limitr refills once however many periods were missed: an `add` grant untouched for two months
    gains two refills here.
    """
    if g.expires_on is not None and g.expires_on < now:
        return None
    if not g.resets:
        return g
    if g.reset_sch is not None:
        start = g.reset_sch.start_of_period(now)
        if g.last_reset is not None and g.last_reset >= start:
            return g
        periods, edge = 1, start
        while g.last_reset is not None and periods < MAX_CATCHUP:
            edge = g.reset_sch.start_of_period(edge - _US)
            if edge <= g.last_reset:
                break
            periods += 1
        return evolve(g, last_reset=start, value=_refills(g, g.value, periods))
    period = g.reset_inc or DEFAULT_PERIOD
    periods = periods_passed(g.granted_on, period, now)
    if periods <= 0:
        return g
    return evolve(g, granted_on=g.granted_on + period * periods, value=_refills(g, g.value, periods))


def make_current(table: Mapping[str, Grant], now: datetime) -> tuple[dict[str, Grant], bool]:
    """Every grant as of `now` (expired ones dropped) and whether anything changed."""
    return as_of(table, current, now)


def reconcile_topups(
    plan: Plan | None, customer_type: str, grants: Grants, now: datetime
) -> tuple[dict[str, Grant], bool]:
    """Top-up grants follow their top-up: dropped when it left the plan (or its included scope), updated to its
    current definition otherwise; a missing included top-up is granted (id `included:<topup>`)."""
    topups = plan.topups if plan is not None else {}
    out: dict[str, Grant] = {}
    changed = False
    for key, g in grants.items():
        if g.topup is None:
            out[key] = g
            continue
        topup = topups.get(g.topup)
        if topup is None or (topup.included and topup.included_scopes and customer_type not in topup.included_scopes):
            changed = True
            continue
        updated = evolve(
            g,
            credit=topup.credit,
            starting_value=topup.value,
            resets=topup.resets,
            reset_inc=topup.reset_inc,
            reset_sch=topup.reset_sch,
            reset_mode=topup.reset_mode,
            rollover_min=topup.rollover_min,
            rollover_max=topup.rollover_max,
            rollover_pct=topup.rollover_pct,
            max_balance=topup.max_balance,
            reset_catchup_cap=topup.reset_catchup_cap,
            expires_on=g.created_on + topup.expires_after if topup.expires_after else None,
        )
        changed |= updated != g
        out[key] = updated
    have = {g.topup for g in out.values()}
    for name, topup in topups.items():
        in_scope = not topup.included_scopes or customer_type in topup.included_scopes
        if topup.included and name not in have and in_scope:
            out[f"included:{name}"] = from_topup(topup, f"included:{name}", now)
            changed = True
    return out, changed


def balance(policy: CompiledPolicy, grants: Grants, credit: str, position: Decimal) -> Decimal:
    """What the grants are worth in `credit` at billable `position`: exact-credit grants 1:1, others pooled in
    runes and converted from where the exact ones end."""
    exact, runes = ZERO, ZERO
    for g in grants.values():
        if g.value <= 0:
            continue
        if g.credit == credit:
            exact += g.value
        else:
            worth = to_runes(policy, g.value, g.credit)
            runes += worth if worth is not None else ZERO
    if runes == 0:
        return exact
    pooled = from_runes(policy, runes, credit, max(ZERO, position) + exact)
    return exact + (pooled if pooled is not None else ZERO)


def _unit_runes(policy: CompiledPolicy, credit: str) -> Decimal:
    worth = to_runes(policy, Decimal(1), credit)
    return worth if worth is not None else ZERO


def best(policy: CompiledPolicy, grants: Grants, credit: str) -> Grant | None:
    """The grant to draw next. Exact-credit grants always first; then by `exchange.grant_strategy`:
    `expires_first` (earliest expiry, then oldest), `valuable_first` / `cheapest_first` (rune value per unit)."""
    usable = [g for g in grants.values() if g.value > 0 and (g.credit == credit or resolve(policy, g.credit))]
    exact = [g for g in usable if g.credit == credit]
    pool = exact or usable
    if not pool:
        return None
    strategy = policy.exchange.grant_strategy
    if strategy == "expires_first":
        return min(pool, key=lambda g: (g.expires_on is None, g.expires_on or g.created_on, g.created_on))
    if exact:
        return exact[0]
    values = {g.id: _unit_runes(policy, g.credit) for g in pool}
    pick = max if strategy == "valuable_first" else min
    return pick(pool, key=lambda g: values[g.id])


def draw(
    policy: CompiledPolicy, grants: Grants, credit: str, overage: Decimal, position: Decimal
) -> tuple[dict[str, Grant], Decimal, Decimal]:
    """Cover `overage` units of `credit` (starting at billable `position`) from the grants.

    Returns (grants after drawing, units covered, units left uncovered). A drained grant is removed unless it
    resets. Conversions are clamped at 0 so a volume reprice never credits a grant.
    """
    out = dict(grants)
    applied = ZERO
    for _ in range(len(out) + 1):
        if overage <= 0:
            break
        g = best(policy, out, credit)
        if g is None:
            break
        need = exchange(policy, overage, credit, g.credit, source_offset=position)
        need = max(ZERO, need) if need is not None else None
        if need is not None and need < g.value:
            out[g.id] = evolve(g, value=g.value - need)
            applied += overage
            overage = ZERO
            break
        worth = exchange(policy, g.value, g.credit, credit, target_offset=position)
        covered = min(overage, max(ZERO, worth)) if worth is not None else ZERO
        if g.resets:
            out[g.id] = evolve(g, value=ZERO)
        else:
            del out[g.id]
        applied += covered
        overage -= covered
        position += covered
    return out, applied, overage
