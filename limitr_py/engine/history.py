"""Each customer's recent events, kept in the store for people to look at (the dashboard).

An engine that keeps history writes each event it commits to the outbox once more, owed to `history:` (like a
webhook endpoint: in the same commit as the state it describes, on every store). `record` then moves what is
owed into one record per customer, `events:<id>`, holding its last KEEP events, and removes those entries in the
same commit: one commit per customer group, checked against the records' versions, so several processes can
run it at once (a conflict leaves the entries for the next round) and no event is recorded twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from limitr_py.engine import codec, keys
from limitr_py.engine.values import Event
from limitr_py.stores.base import Commit, OutboxEntry, Store

CONSUMER = "history:"
KEEP = 50
"""Events kept per customer, newest last."""
DEFAULT_SKIP = frozenset({"meter-changed"})
"""What is not kept unless asked otherwise: `meter-changed` (most metered calls send one; the meters and the
usage chart already show it). Every other event, and every notification, is kept."""


def entry_id(event: Event) -> str:
    return "evh_" + hashlib.sha256(f"{event.id}\0{event.name}".encode()).hexdigest()[:32]


def customer_of(event: Event, group: str) -> str:
    """Whose history an event goes to: its `customer`, a customer-* event's `id`, else the customer whose call
    committed it (the entry's group)."""
    found = event.payload.get("customer", event.payload.get("id") if event.name.startswith("customer-") else None)
    if isinstance(found, str):
        return found
    return group[len(keys.CUSTOMER.prefix) :] if group.startswith(keys.CUSTOMER.prefix) else group


def appended(record: Any, bodies: Iterable[str]) -> tuple[dict[str, Any], int]:
    """The record with `bodies` added (those it already holds are not: another process recorded them after
    this one read the outbox), and how many were added."""
    kept: list[str] = list(record["events"]) if record else []
    seen = set(kept)
    new = [body for body in bodies if body not in seen]
    return {"events": (kept + new)[-KEEP:]}, len(new)


def record(store: Store, grouped: bool, scan: int) -> int:
    """Move the history entries of the outbox into the customers' records; how many were recorded."""
    by_group: dict[str, list[OutboxEntry]] = {}
    for entry in store.pending(scan):
        if entry.consumers == (CONSUMER,):
            by_group.setdefault(entry.group, []).append(entry)
    recorded = 0
    for group, entries in by_group.items():
        bodies: dict[str, list[str]] = {}
        for entry in entries:
            who = customer_of(codec.load_event(entry.body), group)
            bodies.setdefault(keys.events(who), []).append(entry.body)
        where = group if grouped else None
        current = store.read(list(bodies), where)
        writes, added = {}, 0
        for key, new in bodies.items():
            writes[key], count = appended(current[key].value, new)
            added += count
        commit = Commit(
            {key: current[key].version for key in bodies}, writes, acks={e.id: () for e in entries}, group=where
        )
        if store.commit(commit).ok:  # else another process is recording them: they are left for next round
            recorded += added
    return recorded


def recent(value: Any, limit: int) -> list[Event]:
    """A history record's events, newest first."""
    if not value:
        return []
    return [codec.load_event(body) for body in reversed(value["events"][-limit:])]
