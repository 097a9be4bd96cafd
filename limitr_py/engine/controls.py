"""The seeds' billing controls on the engine (SPEC §3.1, reference/autumn.md §3, seeds 000, 001, 004).

Pure functions: which controls apply to a call (an entity's entries override its customer's per feature, the
customer's override the plan), how they change the limit's behaviour, the windows usage limits count in, and
the edge-triggered alerts. The decision core calls these; nothing here reads a store or a clock.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import CompiledPolicy, Limit, Mode
from limitr_py.engine import meters, resolve
from limitr_py.engine.exchange import exchange
from limitr_py.engine.records import plain
from limitr_py.engine.state import ZERO, CustomerState, OverageLimit, PurchaseLimit, UsageAlert, UsageLimit, Window
from limitr_py.engine.values import BillingConfig

INTERVALS = ("day", "week", "month", "year")
_FIXED = {"day": timedelta(days=1), "week": timedelta(days=7)}
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class WindowRef:
    """A usage limit that applies to a call: who holds the counter, its key, and units → counted units."""

    holder: str
    key: str
    limit: UsageLimit
    factor: Decimal
    anchor: datetime | None


@dataclass(frozen=True, slots=True)
class Effective:
    """The controls in force for one call."""

    mode: Mode  # after `overage` / `overage_allowed` overrides
    billed: bool  # overage past the limit is charged (False: allowed by `overage_allowed` but not billed)
    max_overage: Decimal | None
    max_overage_type: str  # `max_overage` (plan or Owostack) | `spend_limit` (Autumn)
    windows: tuple[WindowRef, ...]
    overage_limit: OverageLimit | None
    overage_holder: str | None
    alerts: tuple[tuple[str, UsageAlert], ...]


def chain(customers: Mapping[str, CustomerState], caller: CustomerState) -> list[CustomerState]:
    """The caller, then the customer it is an entity of (controls resolve in this order)."""
    parent = customers.get(caller.parent) if caller.parent else None
    return [caller, parent] if parent is not None else [caller]


def anchor_of(customers: Mapping[str, CustomerState], holder: CustomerState) -> datetime | None:
    if holder.billing_anchor is not None or holder.parent is None:
        return holder.billing_anchor
    parent = customers.get(holder.parent)
    return parent.billing_anchor if parent is not None else None


def cycle_anchor(
    policy: CompiledPolicy, customers: Mapping[str, CustomerState], holder: CustomerState, feature: str, now: datetime
) -> datetime | None:
    """Where a usage limit's windows are phased from. Seed 004: "the window is tied to the feature's reset
    cycle", so it is the current period start of the feature's meter when that meter resets (a rolling 30-day
    meter started at 14:30 gives day windows that roll at 14:30, `monthly:9` month windows from the 9th, and a
    plan change that restarts the meter re-anchors the window). A feature without a reset cycle of its own (one
    that never resets, or a credit-system credit) follows the billing anchor of a plan with a price; with
    neither, None: the UTC calendar."""
    for member in chain(customers, holder):
        plan = resolve.plan_for(policy, customers, member)
        entitlement = plan.entitlements.get(feature) if plan is not None else None
        if entitlement is None:
            continue
        limit, _ = resolve.limit_for(member, entitlement, now)
        owner = resolve.scope_owner(customers, member, entitlement.scope) or member
        meter = owner.meters.get(feature)
        if limit is not None and limit.resets and meter is not None and meter.started is not None:
            return meters.period_start(limit, meter.started, now)
        break
    return anchor_of(customers, holder)


def effective(
    policy: CompiledPolicy,
    customers: Mapping[str, CustomerState],
    caller: CustomerState,
    entitlement: str,
    limit: Limit,
    now: datetime,
) -> Effective:
    members = chain(customers, caller)
    mode, billed = limit.mode, True
    config = next(
        (c.billing.feature_configs[entitlement] for c in members if entitlement in c.billing.feature_configs), None
    )
    if mode != "observe":
        if config is not None and config.overage == "block":
            mode = "hard"
        elif config is not None and config.overage == "charge":
            mode = "soft"
        allowed = next(
            (c.billing.overage_allowed[entitlement] for c in members if entitlement in c.billing.overage_allowed), None
        )
        if allowed is False:  # checked first: a hard stop at the included amount, whatever the pricing
            mode = "hard"
        elif allowed is True and mode == "hard":
            mode, billed = "soft", False
    spend = next((c.billing.spend_limits[entitlement] for c in members if entitlement in c.billing.spend_limits), None)
    if spend is not None:
        max_overage, kind = (spend.overage_limit if spend.enabled else None), "spend_limit"
    elif config is not None and config.max_overage_units is not None:
        max_overage, kind = config.max_overage_units, "max_overage"
    else:
        max_overage, kind = limit.max_overage, "max_overage"
    windows: list[WindowRef] = []
    for holder in members:
        for key, usage_limit in holder.billing.usage_limits.items():
            if not usage_limit.enabled:
                continue
            factor = _factor(policy, usage_limit.feature_id, entitlement, limit.credit)
            if factor is not None:
                windows.append(
                    WindowRef(
                        holder.id,
                        key,
                        usage_limit,
                        factor,
                        cycle_anchor(policy, customers, holder, usage_limit.feature_id, now),
                    )
                )
    top = members[-1]
    alerts = tuple(
        (c.id, a) for c in members for a in c.billing.usage_alerts if a.enabled and a.feature_id == entitlement
    )
    return Effective(
        mode,
        billed,
        max_overage,
        kind,
        tuple(windows),
        top.billing.overage_limit,
        top.id if top.billing.overage_limit else None,
        alerts,
    )


def _factor(policy: CompiledPolicy, feature: str, entitlement: str, credit: str) -> Decimal | None:
    """How many counted units one unit of the call is: 1 for the entitlement (or its own credit); for a credit
    system, the call's credit cost in that credit; None when the limit is about something else."""
    if feature in (entitlement, credit):
        return Decimal(1)
    if feature not in policy.credits and feature not in policy.exchange.pairs:
        return None
    converted = exchange(policy, Decimal(1), credit, feature)
    return converted if converted is not None and converted > 0 else None


def window_start(interval: str, anchor: datetime | None, now: datetime) -> datetime:
    """Start of the usage window containing `now`: phased to the billing anchor when there is one (a day
    window rolls at the billing time of day, a month window on the billing day), else the UTC calendar."""
    if anchor is None:
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if interval == "day":
            return midnight
        if interval == "week":
            return midnight - timedelta(days=midnight.weekday())
        if interval == "month":
            return midnight.replace(day=1)
        return midnight.replace(month=1, day=1)
    if interval in _FIXED:
        step = _FIXED[interval]
        periods = ((now - anchor) // _US) // (step // _US)
        return anchor + step * periods
    months = 12 if interval == "year" else 1
    n = (now.year - anchor.year) * 12 + now.month - anchor.month
    n -= n % months
    while True:
        start = _add_months(anchor, n)
        if start <= now:
            return start
        n -= months


def _add_months(when: datetime, months: int) -> datetime:
    year, month = divmod(when.month - 1 + months, 12)
    year, month = when.year + year, month + 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def window_used(holder: CustomerState, ref: WindowRef, now: datetime) -> tuple[datetime, Decimal]:
    """(current window start, units counted in it); a window that ended counts 0 (rolled lazily)."""
    start = window_start(ref.limit.interval, ref.anchor, now)
    stored = holder.billing.windows.get(ref.key)
    return start, (stored.used if stored is not None and stored.start == start else ZERO)


def count(
    holder_windows: Mapping[str, Window], key: str, start: datetime, used: Decimal, add: Decimal
) -> dict[str, Window]:
    return {**holder_windows, key: Window(start, used + add)}


def crossed(alert: UsageAlert, old: Decimal, new: Decimal, included: Decimal) -> bool:
    """Edge-triggered: fires on the call that takes usage from below the threshold to at or above it, so it
    fires once per crossing and again only after usage fell back below it."""
    if alert.threshold_type == "usage_percentage":
        if included <= 0:
            return False
        old, new = old / included * 100, new / included * 100
    return old < alert.threshold <= new


def purchase_window_start(limit: PurchaseLimit, now: datetime) -> datetime:
    """Start of the rolling window a top-up purchase limit counts in (`interval_count` × `interval` back)."""
    if limit.interval == "month":
        return _add_months(now, -limit.interval_count)
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}[limit.interval]
    return now - step * limit.interval_count


def billing_view(
    policy: CompiledPolicy, customers: Mapping[str, CustomerState], state: CustomerState, now: datetime
) -> BillingConfig:
    """What `billing_config()` and `Customer.billing` show: Owostack's settings, and Autumn's controls as they
    apply to this customer (an entity's own entries, filled in from its customer's), each usage limit with the
    usage counted in its current window."""
    members = chain(customers, state)
    b = state.billing
    overage_limit = None
    top = members[-1].billing.overage_limit
    if top is not None:
        overage_limit = {"max_overage_amount": top.max_overage_amount, "on_limit_reached": top.on_limit_reached}
    configs = {
        f: {"overage": c.overage, "max_overage_units": c.max_overage_units} for f, c in b.feature_configs.items()
    }

    def merged(name: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for member in members:
            table = getattr(member.billing, name)
            for feature, entry in table.items():
                if feature not in seen:
                    row = plain(entry) if not isinstance(entry, bool) else {"feature_id": feature, "enabled": entry}
                    seen[feature] = {**row, "source": "entity" if member.parent else "customer"}
        return list(seen.values())

    usage_limits = []
    for member in members:
        for key, limit in member.billing.usage_limits.items():
            ref = WindowRef(
                member.id, key, limit, Decimal(1), cycle_anchor(policy, customers, member, limit.feature_id, now)
            )
            start, used = window_used(member, ref, now)
            usage_limits.append(
                {
                    **plain(limit),
                    "usage": used,
                    "window_start": start,
                    "source": "entity" if member.parent else "customer",
                }
            )
    alerts = [
        {**plain(a), "source": "entity" if m.parent else "customer"} for m in members for a in m.billing.usage_alerts
    ]
    controls = {
        "overage_allowed": merged("overage_allowed"),
        "spend_limits": merged("spend_limits"),
        "usage_limits": usage_limits,
        "usage_alerts": alerts,
        "auto_topups": [plain(t) for t in members[-1].billing.auto_topups.values()],
    }
    return BillingConfig(overage_limit, configs, controls)
