"""Mutable per-customer state as the engine keeps it between calls (reference/limitr.md §2.11).

Records read from a store are shared (the memory store hands out the committed objects): code that changes a
record first takes `copy()` of it and of each meter it touches, so a snapshot never changes under a reader and
an attempt that loses its version check leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.compile.graph import Limit

ZERO = Decimal(0)
HISTORY_SIZE = 3


@dataclass(slots=True)
class Hold:
    value: Decimal
    overhead: Decimal
    expires: datetime
    basis: Decimal | None = None
    segment: str | None = None


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

    def copy(self) -> MeterState:
        # explicit rather than dataclasses.replace: this runs on every metered call
        return MeterState(self.credit, self.started, self.value, self.overhead, self.history, self.ewma_rate,
                          self.governor_tokens, self.governor_last_refill, dict(self.holds))


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

    def copy(self) -> CustomerState:
        """A copy whose containers can change without touching this one (meters are copied when changed)."""
        return CustomerState(self.id, self.plan, self.type, self.label, self.refs, self.alt_ids, dict(self.metadata),
                             self.created, dict(self.meters), dict(self.overrides))
