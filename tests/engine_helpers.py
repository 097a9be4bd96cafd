"""Building engines for tests: a policy from a small dict, a ManualClock, and an event recorder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from limitr_py import Limitr, ManualClock
from limitr_py.engine.values import Event
from limitr_py.stores import open_store
from tests import backends

START = datetime(2026, 3, 15, 14, 30, tzinfo=UTC)  # a Sunday, the reference instant of limitr.md §2.12


def policy(
    entitlements: dict[str, Any],
    *,
    credits: dict[str, Any] | None = None,
    plans: dict[str, Any] | None = None,
    start: datetime = START,
    store: Any = None,
    **extra: Any,
) -> tuple[Limitr, ManualClock]:
    """An engine whose default plan `main` has `entitlements` (in memory unless `store` says otherwise); credits
    default to one unpriced `unit`. Tests that run on every backend use `Engines.policy` instead."""
    return engine_on(small_document(entitlements, credits=credits, plans=plans, **extra), start, store)


def small_document(
    entitlements: dict[str, Any],
    *,
    credits: dict[str, Any] | None = None,
    plans: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "policy": {
            "credits": credits or {"unit": {}},
            "plans": {"main": {"default": True, "entitlements": entitlements}, **(plans or {})},
            **extra,
        }
    }


def engine_on(doc: Any, start: datetime = START, store: Any = None) -> tuple[Limitr, ManualClock]:
    """`Limitr.new(doc)` on `store` (memory when None), with a ManualClock at `start`."""
    clock = ManualClock(start)
    return Limitr.new(doc, clock=clock, store=store), clock


class Engines:
    """The store under test, as the `engines` fixture (tests/conftest.py) hands it to a test: every engine and
    URL it makes is a fresh namespace of one backend of tests/backends.py, closed and emptied when the test ends."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self._tmp = tmp
        self._urls: list[str] = []
        self._engines: list[Limitr] = []

    def url(self) -> str:
        """A fresh namespace of the backend (each `memory://` opens a store of its own)."""
        url = backends.BACKENDS[self.backend](self._tmp)
        self._urls.append(url)
        return url

    def policy(
        self,
        entitlements: dict[str, Any],
        *,
        credits: dict[str, Any] | None = None,
        plans: dict[str, Any] | None = None,
        start: datetime = START,
        **extra: Any,
    ) -> tuple[Limitr, ManualClock]:
        """`policy()` on a fresh namespace of the backend."""
        return self.engine_on(small_document(entitlements, credits=credits, plans=plans, **extra), start)

    def engine_on(self, doc: Any, start: datetime = START) -> tuple[Limitr, ManualClock]:
        """`engine_on()` on a fresh namespace of the backend."""
        engine, clock = engine_on(doc, start, self.url())
        self._engines.append(engine)
        return engine, clock

    def adopt(self, engine: Limitr) -> Limitr:
        """Close `engine` with the others when the test ends (for engines a test builds with `Limitr.new`)."""
        self._engines.append(engine)
        return engine

    def clean_up(self) -> None:
        for engine in self._engines:
            engine.close()
        for url in self._urls:  # opened again, so namespaces written by processes and raw stores go too
            empty(url)


def empty(url: str) -> None:
    """Delete every record and outbox entry of the namespace `url` names (a SQLite file goes with tmp_path)."""
    if url.startswith(("redis", "postgresql")):
        store = open_store(url)
        store.flush()  # type: ignore[attr-defined]
        store.close()


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
