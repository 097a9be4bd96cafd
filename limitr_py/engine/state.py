"""Per-customer state as the engine keeps it between calls (reference/limitr.md §2.11).

`CustomerState` and `MeterState` are containers the engine copies before changing (records read from a store are
shared: the memory store hands out the committed objects, so a snapshot never changes under a reader and an
attempt that loses its version check leaves nothing behind). Everything inside them — holds, grants, caps,
estimates — is a frozen value replaced whole when it changes; `Cap` and `Grant` are also what the API returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from limitr_py.compile.graph import Limit
from limitr_py.schedules import Schedule

ZERO = Decimal(0)
HISTORY_SIZE = 3
T = TypeVar("T")


def evolve(obj: T, /, **changes: Any) -> T:
    """`dataclasses.replace` for the engine's slotted dataclasses, at half its cost (replace walks `fields()`
    and calls `__init__` with every field on each use; none of these classes has a `__post_init__` or an
    `init=False` field for it to honour). For the copies a decision makes per call: caps, grants, limits."""
    cls = type(obj)
    new = object.__new__(cls)
    put = object.__setattr__  # frozen classes refuse setattr once built; this builds
    for name in cls.__slots__:  # type: ignore[attr-defined]
        put(new, name, changes.pop(name) if name in changes else getattr(obj, name))
    if changes:
        raise TypeError(f"{cls.__name__} has no field {', '.join(map(repr, changes))}")
    return new


Interval = Literal["day", "week", "month", "year"]
"""The window of an Autumn usage limit."""
OnLimitReached = Literal["block", "notify"]
"""What Owostack's overage limit does once reached: deny further overage, or only send `limit-reached`."""
ON_LIMIT_REACHED: tuple[OnLimitReached, ...] = ("block", "notify")


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation on a meter: counts against its limit and caps until settled, released or expired."""

    value: Decimal
    overhead: Decimal
    expires: datetime
    basis: Decimal | None = None
    segment: str | None = None


@dataclass(frozen=True, slots=True)
class EstimateState:
    """Running mean and variance of a call's size (and provider cost), per segment (Limitr's Estimate)."""

    samples: int = 0
    alpha: Decimal = Decimal("0.1")
    per_basis: bool = False
    value_mean: Decimal = ZERO
    value_var: Decimal = ZERO
    overhead_mean: Decimal = ZERO
    overhead_var: Decimal = ZERO
    source: str = "local"
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A balance of credit that covers usage past a limit (promo credit, a top-up, an included top-up)."""

    id: str
    credit: str
    value: Decimal
    starting_value: Decimal
    created_on: datetime
    granted_on: datetime  # rolling-period anchor
    topup: str | None = None
    resets: bool = False
    reset_inc: timedelta | None = None
    reset_sch: Schedule | None = None
    last_reset: datetime | None = None  # calendar anchor
    expires_on: datetime | None = None
    reset_mode: str = "hard"
    rollover_min: Decimal | None = None
    rollover_max: Decimal | None = None
    rollover_pct: Decimal | None = None
    max_balance: Decimal | None = None
    reset_catchup_cap: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Cap:
    """A spend cap (Limitr's Cap): a ceiling in `credit` on what the calls it applies to consume."""

    id: str
    value: Decimal  # the ceiling, and the threshold of `cap-threshold-crossed`
    credit: str = "rune"
    exchangeable: bool = True
    ignore_grants: bool = False
    overage_only: bool = False
    observe_only: bool = False
    overhead_cost: bool = False
    follow_decrements: bool = False
    hard_trailing: bool = False
    shared: bool = False
    shared_with: tuple[str, ...] | None = None
    scope: tuple[str, ...] | None = None
    created_on: datetime | None = None
    meter_value: Decimal = ZERO
    started: datetime | None = None
    resets: bool = False
    reset_inc: timedelta | None = None
    reset_sch: Schedule | None = None
    last_reset: datetime | None = None
    expires_on: datetime | None = None
    temp: bool = False  # call-scoped: never stored


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Owostack's per-customer feature exception: `overage` block | charge, `max_overage_units` (None = plan's)."""

    overage: Literal["block", "charge"] | None = None
    max_overage_units: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OverageLimit:
    """Owostack's customer-wide cap on billable overage, in minor units of the policy currency."""

    max_overage_amount: int
    on_limit_reached: OnLimitReached = "block"


@dataclass(frozen=True, slots=True)
class SpendLimit:
    """Autumn: most overage units past the included amount (`enabled: false` = no cap, shadowing the plan's)."""

    feature_id: str
    enabled: bool = True
    overage_limit: Decimal | None = None


@dataclass(frozen=True, slots=True)
class UsageLimit:
    """Autumn: at most `limit` units of a feature (or credits of a credit system) per window."""

    feature_id: str
    limit: Decimal
    interval: Interval
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class UsageAlert:
    feature_id: str
    threshold: Decimal
    threshold_type: Literal["usage", "usage_percentage"] = "usage"
    enabled: bool = True
    name: str | None = None


@dataclass(frozen=True, slots=True)
class PurchaseLimit:
    interval: Literal["hour", "day", "week", "month"]
    limit: int
    interval_count: int = 1


@dataclass(frozen=True, slots=True)
class AutoTopup:
    """Autumn: when the balance of `feature_id` falls to `threshold`, buy `quantity` more (customer level only)."""

    feature_id: str
    threshold: Decimal
    quantity: Decimal
    enabled: bool = True
    purchase_limit: PurchaseLimit | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A usage-limit counter: units counted since `start` (the window it belongs to)."""

    start: datetime
    used: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class BillingState:
    """A customer's (or entity's) billing controls and the counters they keep."""

    feature_configs: dict[str, FeatureConfig] = field(default_factory=dict)
    overage_limit: OverageLimit | None = None
    overage_allowed: dict[str, bool] = field(default_factory=dict)
    spend_limits: dict[str, SpendLimit] = field(default_factory=dict)
    usage_limits: dict[str, UsageLimit] = field(default_factory=dict)  # by `feature:interval`
    usage_alerts: tuple[UsageAlert, ...] = ()
    auto_topups: dict[str, AutoTopup] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)  # by `feature:interval`
    topup_purchases: dict[str, tuple[datetime, ...]] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)  # feature → limit type, while a tiny call is denied

    @property
    def empty(self) -> bool:
        return not (
            self.feature_configs
            or self.overage_limit
            or self.overage_allowed
            or self.spend_limits
            or self.usage_limits
            or self.usage_alerts
            or self.auto_topups
        )


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    """A meter's finished period, archived at its reset so the previous period can be invoiced exactly."""

    entitlement: str
    start: datetime
    end: datetime
    value: Decimal
    overhead: Decimal
    billed: Decimal  # runes: list price of the billable units, net of refunds
    covered: Decimal  # runes: list price of the billable units grants paid for
    covered_units: Decimal = ZERO


def as_of(
    table: Mapping[str, T], current: Callable[[T, datetime], T | None], now: datetime
) -> tuple[dict[str, T], bool]:
    """Every entry of a table (grants, caps) as of `now` — `current` rolls resets and returns None once expired —
    and whether anything changed."""
    out: dict[str, T] = {}
    changed = False
    for key, entry in table.items():
        now_entry = current(entry, now)
        changed |= now_entry is not entry
        if now_entry is not None:
            out[key] = now_entry
    return out, changed


NOTHING: Mapping[str, Any] = MappingProxyType({})
"""The empty mapping every state without holds, estimates, overrides, grants, caps or metadata shares (read-only:
those tables are replaced, never changed in place)."""


NO_BILLING = BillingState()
"""The billing state of every customer without billing controls (frozen, and its tables are replaced with it, never
changed in place: one instance serves them all instead of eight empty dicts each)."""


def without(table: Mapping[str, T], key: str) -> dict[str, T]:
    """`table` less `key`, as a new mapping (the tables of a state are never changed in place)."""
    return {k: v for k, v in table.items() if k != key}


@dataclass(slots=True)
class MeterState:
    """One entitlement's usage in the current period, in the credit's units."""

    credit: str
    started: datetime | None
    value: Decimal = ZERO
    overhead: Decimal = ZERO  # this period's provider cost, runes
    history: tuple[tuple[datetime, Decimal], ...] = ()  # ring buffer of (time, delta), newest last
    ewma_rate: Decimal | None = None
    governor_tokens: Decimal | None = None
    governor_last_refill: datetime | None = None
    # Replaced, never changed in place (`{**holds, id: hold}`): a copy of the meter shares them, and a meter without
    # any (nearly all) holds the one empty mapping instead of two dicts of its own
    holds: Mapping[str, Hold] = field(default_factory=lambda: NOTHING)
    estimates: Mapping[str, EstimateState] = field(default_factory=lambda: NOTHING)  # the customer's own, by segment
    billed: Decimal = ZERO  # this period, runes: list price of billable units added (refunds negative)
    covered: Decimal = ZERO  # this period, runes: the part of `billed` grants paid for
    covered_units: Decimal = ZERO  # this period: billable units grants paid for

    def copy(self) -> MeterState:
        # explicit rather than dataclasses.replace: this runs on every metered call
        return MeterState(
            self.credit,
            self.started,
            self.value,
            self.overhead,
            self.history,
            self.ewma_rate,
            self.governor_tokens,
            self.governor_last_refill,
            self.holds,
            self.estimates,
            self.billed,
            self.covered,
            self.covered_units,
        )


@dataclass(slots=True)
class Override:
    """A per-customer limit replacing the plan's for one entitlement until `expires` (None = never)."""

    limit: Limit
    expires: datetime | None = None


@dataclass(slots=True)
class CustomerState:
    id: str
    plan: str  # '' = inherit the plan of the first ref that has one
    type: str = "user"
    label: str = "User"
    refs: tuple[str, ...] = ()
    alt_ids: tuple[str, ...] = ()
    # metadata, overrides, grants and caps are replaced, never changed in place (like a meter's holds): a copy
    # shares them, and most customers, who have none, share the one empty mapping
    metadata: Mapping[str, Any] = field(default_factory=lambda: NOTHING)
    created: datetime | None = None
    meters: dict[str, MeterState] = field(default_factory=dict)
    overrides: Mapping[str, Override] = field(default_factory=lambda: NOTHING)
    grants: Mapping[str, Grant] = field(default_factory=lambda: NOTHING)
    caps: Mapping[str, Cap] = field(default_factory=lambda: NOTHING)
    billing: BillingState = field(default_factory=lambda: NO_BILLING)
    parent: str | None = None  # the customer an entity belongs to
    entities: tuple[str, ...] = ()
    billing_anchor: datetime | None = None  # start of the billing cycle (plan with a price), else None
    periods: tuple[ClosedPeriod, ...] = ()  # archive of closed meter periods, newest last

    def copy(self) -> CustomerState:
        """A copy whose meters dict can change without touching this one (meters themselves are copied when
        changed; the other tables are replaced, never changed, so they are shared)."""
        return CustomerState(
            self.id,
            self.plan,
            self.type,
            self.label,
            self.refs,
            self.alt_ids,
            self.metadata,
            self.created,
            dict(self.meters),
            self.overrides,
            self.grants,
            self.caps,
            self.billing,
            self.parent,
            self.entities,
            self.billing_anchor,
            self.periods,
        )
