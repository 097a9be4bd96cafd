"""Margins (reference/limitr.md §1.1, §3.9): revenue from overage at list price against recorded provider cost.

Units inside the plan's limit earn nothing here (a plan fee is its own line); grants and top-ups are ignored.
Margins are percentages rounded half-up to 2 decimals; the total is −100 when there is no revenue.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from limitr_py.compile.graph import Plan
from limitr_py.engine import arguments as args
from limitr_py.engine import meters
from limitr_py.engine.decide import Decider, Snapshot, credit_overhead, list_price, price_units, quantity_in
from limitr_py.engine.state import ZERO, CustomerState
from limitr_py.errors import InvalidArgumentError

_CENT = Decimal("0.01")


def _margin(revenue: Decimal, cost: Decimal) -> Decimal | None:
    return None if revenue == 0 else ((revenue - cost) / revenue * 100).quantize(_CENT, ROUND_HALF_UP)


def _summary(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    revenue = sum((r["revenue"] for r in rows.values()), ZERO)
    cost = sum((r["cost"] for r in rows.values()), ZERO)
    margin = _margin(revenue, cost)
    return {
        "revenue": revenue,
        "cost": cost,
        "margin": Decimal(-100) if margin is None else margin,
        "entitlements": rows,
    }


def customer_breakdown(decider: Decider, snap: Snapshot, state: CustomerState, now: datetime) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for name in state.meters:
        call = decider.locate(snap, state.id, name, now)
        if call is None or call.meter is None:
            continue
        fresh = meters.reset_pending(call.limit, call.meter, now) is not None
        value = ZERO if fresh else call.meter.value
        cost = ZERO if fresh else call.meter.overhead
        revenue = price_units(decider.policy, call, max(ZERO, value - call.limit.value), ZERO) or ZERO
        rows[name] = {"cost": cost, "revenue": revenue, "margin": _margin(revenue, cost)}
    return _summary(rows)


def plan_period(plan: Plan) -> timedelta:
    """Limitr's `period_time()`: yearly 365 days, weekly 7, daily 1, anything else 30."""
    period = plan.period.lower()
    if "year" in period:
        return timedelta(days=365)
    if "week" in period:
        return timedelta(days=7)
    if "day" in period or "daily" in period:
        return timedelta(days=1)
    return timedelta(days=30)


def plan_breakdown(decider: Decider, plan: Plan, usage: Mapping[str, Any], scaled: bool) -> dict[str, Any]:
    """Hypothetical usage per entitlement: a meter value, or {meter, limit?, credit?, overhead?, context?}.
    With `scaled`, a limit that resets on a rolling period other than the plan's is scaled to the plan period
    (calendar schedules are not)."""
    if not isinstance(usage, Mapping):
        raise InvalidArgumentError(
            f"entitlements must be a mapping of entitlement to usage, got `{type(usage).__name__}`"
        )
    policy = decider.policy
    rows: dict[str, dict[str, Any]] = {}
    for name, spec in usage.items():
        ent = plan.entitlements.get(name)
        if ent is None or ent.limit is None:
            raise InvalidArgumentError(f"plan `{plan.name}` has no metered entitlement `{name}`")
        spec = spec if isinstance(spec, Mapping) else {"meter": spec}
        credit = policy.credits.get(str(spec.get("credit") or ent.limit.credit))
        if credit is None:
            raise InvalidArgumentError(f"unknown credit `{spec.get('credit')}` for `{name}`")
        # units convert to the credit's unit, like a call's value (`'2GB'` on a credit kept in MB is 2000)
        meter = quantity_in(credit, args.quantity(spec.get("meter", 0), f"`{name}` meter"))
        limit = (
            quantity_in(credit, args.quantity(spec["limit"], f"`{name}` limit"))
            if spec.get("limit") is not None
            else ent.limit.value
        )
        factor = Decimal(1)
        period = ent.limit.period
        if scaled and period is not None and period != plan_period(plan):
            us = timedelta(microseconds=1)
            factor = Decimal(plan_period(plan) // us) / Decimal(period // us)
        meter, limit = meter * factor, limit * factor
        if spec.get("overhead") is not None:
            cost = args.amount(spec["overhead"], f"`{name}` overhead") * factor
        else:
            cost = credit_overhead(credit, meter, spec.get("context"), decider.overhead_fns)
        own = ent.limit.pricing if ent.limit.pricing is not None and ent.limit.pricing.priced else None
        revenue = list_price(policy, credit, own, max(ZERO, meter - limit), ZERO) or ZERO
        rows[name] = {"cost": cost, "revenue": revenue, "margin": _margin(revenue, cost)}
    return _summary(rows)
