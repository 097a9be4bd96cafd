"""What the read methods answer about one located call (`Decider.locate`): usage, what is left, the limit with
grants, the governor's allowance, the period's end, rates and the projected exhaustion. Pure functions of the
call and the time; the façade reads the snapshot and checks the arguments."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from limitr_py.compile.graph import Plan
from limitr_py.engine import meters
from limitr_py.engine.decide import Call, Decider
from limitr_py.engine.state import ZERO


def current(call: Call, now: datetime) -> Decimal:
    """Usage in the current period: 0 when the meter's period has ended but no call has reset it yet."""
    if call.meter is None or meters.reset_pending(call.limit, call.meter, now) is not None:
        return ZERO
    return call.meter.value


def left(decider: Decider, call: Call, now: datetime, percent: bool, grants: bool) -> Decimal | None:
    """What `remaining` answers (None for observe limits); with `percent`, as a share of the limit."""
    if call.limit.mode == "observe":
        return None
    used, limit_value = current(call, now), call.limit.value
    if grants:
        balance = decider.grant_balance(call, now, max(ZERO, used - limit_value))
        if balance > 0:
            limit_value = max(used, limit_value) + balance
    remaining = limit_value - used
    if not percent:
        return remaining
    return ZERO if limit_value == 0 else max(ZERO, remaining) / limit_value * 100


def used(decider: Decider, call: Call, now: datetime, percent: bool, grants: bool) -> Decimal | None:
    """What `value` answers: usage this period, or with `percent` the share of the limit used."""
    if not percent:
        return current(call, now)
    share_left = left(decider, call, now, True, grants)
    return None if share_left is None else 100 - share_left


def limit_with_grants(decider: Decider, call: Call, now: datetime, grants: bool) -> Decimal | None:
    if call.limit.mode == "observe":
        return None
    if not grants:
        return call.limit.value
    usage = current(call, now)
    return call.limit.value + decider.grant_balance(call, now, max(ZERO, usage - call.limit.value))


def allowance(decider: Decider, call: Call, now: datetime, grants: bool) -> Decimal | None:
    """`remaining`, capped by the governor's tokens available now."""
    remaining = left(decider, call, now, False, grants)
    if remaining is None or not meters.governed(call.limit):
        return remaining
    pending = meters.reset_pending(call.limit, call.meter, now) is not None
    return min(remaining, meters.governor_available(call.limit, None if pending else call.meter, now))


def history(call: Call, now: datetime) -> tuple[tuple[datetime, Decimal], ...]:
    """The meter's recent calls (none when its period ended and no call has reset it yet)."""
    if call.meter is None or meters.reset_pending(call.limit, call.meter, now) is not None:
        return ()
    return call.meter.history


def projected_exhaustion(decider: Decider, call: Call, now: datetime, smoothed: bool, grants: bool) -> timedelta | None:
    """How long until the limit is used up at the current rate; None when not rising or nothing remains."""
    if call.meter is None or meters.reset_pending(call.limit, call.meter, now) is not None:
        return None
    remaining = left(decider, call, now, False, grants)
    per_ms = (call.meter.ewma_rate or ZERO) if smoothed else meters.rate(call.meter.history)
    if remaining is None or remaining <= 0 or per_ms <= 0:
        return None
    return timedelta(microseconds=int(remaining / per_ms * 1000))


def plan_limit(plan: Plan, entitlement: str) -> Decimal | None:
    """`limit(plan, …)`: the plan's limit value (None for observe limits, flags and unknowns)."""
    ent = plan.entitlements.get(entitlement)
    lim = ent.limit if ent else None
    return None if lim is None or lim.mode == "observe" else lim.value


def plan_cost(plan: Plan, entitlement: str) -> Decimal | None:
    """`cost(plan, …)`: the plan's standard increment."""
    ent = plan.entitlements.get(entitlement)
    return ent.limit.increment if ent and ent.limit else None
