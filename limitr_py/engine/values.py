"""The plain, immutable value objects the API returns (SPEC §4.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.units import format_decimal


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, published after it was committed. `payload` uses Limitr's field names."""

    name: str
    payload: dict[str, Any]
    at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class BillingConfig:
    """A customer's billing controls: Owostack's overage limit and feature configs, Autumn's control lists."""

    overage_limit: dict[str, Any] | None = None
    feature_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    controls: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    plan: str
    type: str
    label: str
    refs: tuple[str, ...]
    alt_ids: tuple[str, ...]
    metadata: dict[str, Any]
    billing: BillingConfig = field(default_factory=BillingConfig)


@dataclass(frozen=True, slots=True)
class Gate:
    """One gate of a decision: its name, whether it let the call through, and the numbers it looked at."""

    name: str
    passed: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """Why a call was (or would be) allowed or denied: what `explain()` returns.

    `gate` is the gate that decided (the first that failed, or the last evaluated when allowed); `limit_type`
    names the kind of limit that bound (`included`, `governor`, `cap`, …; None for feature flags and unknowns);
    `headroom` is how many more units the deciding limit would accept right now (None when unbounded).
    """

    allowed: bool
    gate: str
    limit_type: str | None
    headroom: Decimal | None
    gates: tuple[Gate, ...]


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line: `kind` is subscription | usage | overage | included_credit | grant_credit; `amount` is in minor
    units of the currency (negative for credits), rounded half-up on its own."""

    kind: str
    entitlement: str | None
    description: str
    quantity: Decimal
    unit_price: Decimal  # runes per unit
    amount: int


@dataclass(frozen=True, slots=True)
class Invoice:
    customer: str
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    lines: tuple[InvoiceLine, ...]
    total: int  # minor units: the sum of the lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: times in ISO 8601, quantities and unit prices as exact decimal text, `amount` and `total`
        in minor units of the currency (integers), as `invoice()` has them."""
        return {
            "customer": self.customer,
            "currency": self.currency,
            "period_start": None if self.period_start is None else self.period_start.isoformat(),
            "period_end": None if self.period_end is None else self.period_end.isoformat(),
            "lines": [
                {
                    "kind": line.kind,
                    "entitlement": line.entitlement,
                    "description": line.description,
                    "quantity": format_decimal(line.quantity),
                    "unit_price": format_decimal(line.unit_price),
                    "amount": line.amount,
                }
                for line in self.lines
            ],
            "total": self.total,
        }
