"""Customers' recent events kept in the store (engine/history.py), on every store: what the dashboard shows."""

from __future__ import annotations

import threading
from typing import Any

from limitr_py import Limitr, ManualClock
from limitr_py.stores import open_store
from tests.engine_helpers import START, Engines

DOC: dict[str, Any] = {
    "policy": {
        "credits": {"token": {}},
        "plans": {
            "free": {
                "default": True,
                "entitlements": {"tokens": {"limit": {"credit": "token", "mode": "soft", "value": 100}}},
            }
        },
        "notifications": {"big-overage": {"events": ["meter-overage"], "when": "overage > 10"}},
    }
}


def keeping(engines: Engines, count: int = 1) -> list[Limitr]:
    """`count` engines on one store (a memory store is shared as one object), keeping history."""
    url = engines.url()
    store: Any = open_store(url) if url.startswith("memory") else url
    clock = ManualClock(START)
    made = [engines.adopt(Limitr.new(DOC, store=store, clock=clock)) for _ in range(count)]
    for engine in made:
        engine.keep_event_history()
    return made


def test_each_customer_s_events_are_kept_newest_first_without_meter_changed(engines: Engines) -> None:
    (engine,) = keeping(engines)
    engine.create_customer("u1")
    engine.create_customer("u2")
    engine.allow("u1", "tokens", 50)  # within the 100: meter-changed, not kept
    engine.allow("u1", "tokens", 55)  # 5 over: meter-overage
    engine.allow("u1", "tokens", 20)  # this call 20 over: meter-overage and the notification big-overage
    assert engine.recent_events("u1") == []  # owed, not recorded yet
    assert engine.record_event_history() == 5  # u1: customer-set + 3; u2: customer-set
    assert engine.record_event_history() == 0  # recorded once: the entries went with the commit
    names = [e.name for e in engine.recent_events("u1")]
    assert names == ["meter-overage", "big-overage", "meter-overage", "customer-set"]
    newest = engine.recent_events("u1")[0]
    assert newest.payload["meter"]["value"] == 125 and newest.payload["overage"] == 20  # Decimals, kept exact
    assert [e.name for e in engine.recent_events("u2")] == ["customer-set"]
    assert [e.name for e in engine.recent_events("u1", limit=1)] == ["meter-overage"]
    assert engine.recent_events("nobody") == []


def test_only_the_last_fifty_are_kept(engines: Engines) -> None:
    (engine,) = keeping(engines)
    engine.create_customer("u1")
    for n in range(60):
        engine.allow("u1", "tokens", 101 if n == 0 else 1)  # past the limit: each call sends meter-overage
        if n % 20 == 19:
            engine.record_event_history()
    engine.record_event_history()
    kept = engine.recent_events("u1", limit=50)
    assert len(kept) == 50
    # 61 events (customer-set, then 60 meter-overage): the last 50 are meter-overage of values 111 … 160
    assert [e.payload["meter"]["value"] for e in kept] == list(range(160, 110, -1))


def test_processes_recording_at_once_record_each_event_once(engines: Engines) -> None:
    makers = keeping(engines, 3)
    for n in range(20):
        makers[n % 3].create_customer(f"u{n}")
    start = threading.Barrier(3)
    recorded = [0, 0, 0]

    def work(i: int) -> None:
        start.wait()
        while True:
            done = makers[i].record_event_history()
            recorded[i] += done
            if not done and not [e for e in makers[i].store.pending() if e.consumers == ("history:",)]:
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(recorded) == 20
    for n in range(20):
        assert [e.name for e in makers[0].recent_events(f"u{n}")] == ["customer-set"]


def test_an_engine_that_keeps_no_history_owes_none(engines: Engines) -> None:
    url = engines.url()
    engine = engines.adopt(Limitr.new(DOC, store=url))
    engine.create_customer("u1")
    assert engine.store.pending() == []
    assert engine.record_event_history() == 0
