"""Per-customer state as the engine keeps it between calls (reference/limitr.md §2.11).

`CustomerState` and `MeterState` are containers the engine copies before changing (records read from a store are
shared: the memory store hands out the committed objects, so a snapshot never changes under a reader and an
attempt that loses its version check leaves nothing behind). Everything inside them — holds, grants, caps,
estimates — is a frozen value replaced whole when it changes; `Cap` and `Grant` are also what the API returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import Limit
from limitr_py.schedules import Schedule

ZERO = Decimal(0)
HISTORY_SIZE = 3


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
    holds: dict[str, Hold] = field(default_factory=dict)
    estimates: dict[str, EstimateState] = field(default_factory=dict)  # the customer's own, by segment

    def copy(self) -> MeterState:
        # explicit rather than dataclasses.replace: this runs on every metered call
        return MeterState(self.credit, self.started, self.value, self.overhead, self.history, self.ewma_rate,
                          self.governor_tokens, self.governor_last_refill, dict(self.holds), dict(self.estimates))


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
    metadata: dict[str, Any] = field(default_factory=dict)
    created: datetime | None = None
    meters: dict[str, MeterState] = field(default_factory=dict)
    overrides: dict[str, Override] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    caps: dict[str, Cap] = field(default_factory=dict)

    def copy(self) -> CustomerState:
        """A copy whose containers can change without touching this one (meters are copied when changed)."""
        return CustomerState(self.id, self.plan, self.type, self.label, self.refs, self.alt_ids, dict(self.metadata),
                             self.created, dict(self.meters), dict(self.overrides), dict(self.grants),
                             dict(self.caps))
