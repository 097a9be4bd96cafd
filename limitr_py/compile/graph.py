"""The compiled policy graph: immutable, shareable between threads and engines, fingerprinted.

Everything the runtime needs is resolved here: defaults filled, units converted to each credit's unit, durations
in `timedelta`, schedules parsed, prices as Decimal. The runtime never reads the raw document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from limitr_py.expressions import Expression
from limitr_py.schedules import Schedule

DEFAULT_PERIOD = timedelta(days=30)
"""Rolling period of a resetting limit, top-up or cap with neither `reset_inc` nor `reset_sch` (Limitr)."""


Mode = Literal["hard", "soft", "observe"]
"""How a limit treats a call past it: deny it, let it run on as overage, or only count it."""
MODES: tuple[Mode, ...] = ("hard", "soft", "observe")

DEFAULT_EWMA_ALPHA = Decimal("0.2")
"""Smoothing of a meter's rate (`Limit.ewma_alpha`) when a limit gives none."""


@dataclass(frozen=True, slots=True)
class PriceTier:
    up_to: Decimal | None  # None = unbounded (always the last tier)
    amount: Decimal  # runes per unit (tiered/volume) or for the band (stairstep)
    flat_fee: Decimal = Decimal(0)  # runes charged when the quantity enters this tier


@dataclass(frozen=True, slots=True)
class Pricing:
    """How units turn into runes: `flat`, `package`, `tiered` (graduated), `volume` or `stairstep`."""

    model: str
    price: Decimal | None = None  # flat / package: runes per unit / per block
    tiers: tuple[PriceTier, ...] = ()
    billing_units: Decimal | None = None  # package block size
    price_id: str | None = None

    @property
    def priced(self) -> bool:
        return self.price is not None if self.model in ("flat", "package") else bool(self.tiers)


@dataclass(frozen=True, slots=True)
class OverheadTable:
    """Declarative provider cost: rates[context[by]][field] × context[field], summed over fields."""

    by: str | None
    rates: Mapping[str, Mapping[str, Decimal]]


@dataclass(frozen=True, slots=True)
class Credit:
    name: str
    unit: str
    label: str
    description: str
    overhead_cost: Decimal
    pricing: Pricing
    units: str | None  # the unit meters keep (`MB`, `s` …); None = plain numbers
    overhead: OverheadTable | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    credit: str
    mode: Mode = "hard"
    value: Decimal = Decimal(0)
    increment: Decimal = Decimal(1)
    hard_trailing: bool = False
    grants_apply: bool = True
    minimum: Decimal | None = None
    resets: bool = False
    reset_inc: timedelta | None = None
    reset_sch: Schedule | None = None
    override_expires_on: Decimal | None = None  # ms since the epoch
    governor_enabled: bool = False
    governor_capacity: Decimal | None = None
    governor_refill_rate: Decimal | None = None  # tokens per ms
    ewma_alpha: Decimal = DEFAULT_EWMA_ALPHA
    pricing: Pricing | None = None  # overage pricing overriding the credit's
    max_overage: Decimal | None = None
    invoice_included: bool = False

    @property
    def period(self) -> timedelta | None:
        """The rolling period when the limit resets on a duration (30 days by default), else None."""
        if not self.resets or self.reset_sch is not None:
            return None
        return self.reset_inc or DEFAULT_PERIOD


@dataclass(frozen=True, slots=True)
class Entitlement:
    name: str
    description: str = ""
    limit: Limit | None = None  # None = a feature flag
    scope: str | None = None
    hidden: bool = False
    estimate_basis: str | None = None
    estimate_segment: str | None = None


@dataclass(frozen=True, slots=True)
class Topup:
    name: str
    credit: str
    value: Decimal = Decimal(0)
    description: str = ""
    price: Decimal | None = None
    resets: bool = False
    included: bool = False
    included_scopes: tuple[str, ...] | None = None
    reset_inc: timedelta | None = None
    reset_sch: Schedule | None = None
    reset_mode: str = "hard"
    rollover_min: Decimal | None = None
    rollover_max: Decimal | None = None
    rollover_pct: Decimal | None = None
    max_balance: Decimal | None = None
    expires_after: timedelta | None = None
    reset_catchup_cap: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    label: str = ""
    period: str = "monthly"
    subscription: str = "subscription"
    trial_period: timedelta | None = None
    entitlements: Mapping[str, Entitlement] = None  # type: ignore[assignment]
    topups: Mapping[str, Topup] = None  # type: ignore[assignment]
    hidden: bool = False
    default: bool = False
    price: Decimal | None = None  # recurring fee per period, runes


@dataclass(frozen=True, slots=True)
class ExchangePair:
    name: str
    value: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Exchange:
    grant_strategy: str
    pairs: Mapping[str, ExchangePair]


@dataclass(frozen=True, slots=True)
class Notification:
    name: str
    events: tuple[str, ...]
    when: Expression | None
    description: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class CompiledPolicy:
    """The whole policy, ready for the engine. `fingerprint` is sha256 of its canonical JSON.

    Compared and hashed by identity (`eq=False`), so per-policy lookups can be memoized; compare two policies by
    `fingerprint`.
    """

    currency: str
    credits: Mapping[str, Credit]
    plans: Mapping[str, Plan]
    exchange: Exchange
    notifications: Mapping[str, Notification]
    estimate_min_samples: int
    hold_ttl: timedelta
    version: str | None
    fingerprint: str

    @property
    def default_plan(self) -> Plan | None:
        """The first plan marked `default: true` (Limitr's rule)."""
        return next((p for p in self.plans.values() if p.default), None)
