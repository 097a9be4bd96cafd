"""Building engines for tests: a policy from a small dict, a ManualClock, and an event recorder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from limitr_py import Limitr, ManualClock
from limitr_py.engine.values import Event

START = datetime(2026, 3, 15, 14, 30, tzinfo=UTC)  # a Sunday, the reference instant of limitr.md §2.12

STORE_FACTORY: Callable[[], str] | None = None
"""Set by the `backend` fixture: engines made by `policy()` open a fresh namespace of that store."""
OPENED: list[Limitr] = []


def policy(
    entitlements: dict[str, Any],
    *,
    credits: dict[str, Any] | None = None,
    plans: dict[str, Any] | None = None,
    start: datetime = START,
    store: Any = None,
    **extra: Any,
) -> tuple[Limitr, ManualClock]:
    """An engine whose default plan `main` has `entitlements`; credits default to one unpriced `unit`."""
    doc = {
        "policy": {
            "credits": credits or {"unit": {}},
            "plans": {"main": {"default": True, "entitlements": entitlements}, **(plans or {})},
            **extra,
        }
    }
    return engine_on(doc, start, store)


def engine_on(doc: Any, start: datetime = START, store: Any = None) -> tuple[Limitr, ManualClock]:
    """`Limitr.new(doc)` on the store under test (a fresh namespace of it, emptied afterwards), with a clock."""
    clock = ManualClock(start)
    if store is None and STORE_FACTORY is not None:
        store = STORE_FACTORY()
    engine = Limitr.new(doc, clock=clock, store=store)
    if STORE_FACTORY is not None:
        OPENED.append(engine)
    return engine, clock


def limit(value: Any, credit: str = "unit", **fields: Any) -> dict[str, Any]:
    return {"limit": {"credit": credit, "value": value, **fields}}


class Recorder:
    """Collects every published event."""

    def __init__(self, engine: Limitr) -> None:
        self.events: list[Event] = []
        engine.on("*", self.events.append)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def take(self) -> list[Event]:
        out, self.events[:] = list(self.events), []
        return out

    def meter_events(self) -> list[Event]:
        return [e for e in self.take() if e.name.startswith("meter-")]
