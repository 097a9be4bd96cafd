"""The one storage protocol every backend implements (DESIGN.md Storage).

A store is a versioned key → record map with an all-or-nothing, version-checked commit. It knows nothing about
plans or meters: the engine names the keys, reads a snapshot, decides with pure code, and commits what changed
together with the versions it read. A commit whose expected versions no longer hold writes nothing and returns a
failed result (with the current records of the keys that moved, when the backend can send them in the same
round trip); the engine then decides again.

Version 0 means "absent": expecting version 0 makes a write create-only, which is how an idempotency key is
recorded in the same commit as its effect. Records that only need to outlive retries (idempotency keys, settled
holds) carry an expiry; a store drops them once a commit's `now` is past it. Stores never read a clock.

The outbox: events written in the same commit as the state they describe (`Commit.events`), removed or marked
acknowledged by later commits (`Commit.acks`), and listed by `pending()` after a crash.

Durable backends store text: they declare `encoded = True` and the engine hands them JSON (engine/codec.py).
A backend that shards (Redis Cluster) declares `grouped = True`: every read and commit then names the customer
group all its keys belong to, and the backend keeps a group's keys together (one hash slot).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Versioned(NamedTuple):
    """A record as read: its version (0 = never written) and value (None when absent or deleted: a deleted record
    keeps counting versions, so a reader holding an old version can never match a record created later). Built
    for every key of every call: a tuple, immutable and cheap."""

    version: int
    value: Any = None


ABSENT = Versioned(0, None)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An event written with its commit: `consumers` are the handler registrations that still owe an ack."""

    id: str
    group: str  # the key of the customer the event belongs to (keeps it in the same shard as its commit)
    body: Any  # the event (encoded text on durable stores)
    consumers: tuple[str, ...]


class Commit(NamedTuple):
    """What one engine call changes: every key it read with the version it saw, and the new values.

    `writes` maps a key to its new value, or to None to delete it. Keys in `writes` that are not in `expected`
    are written without a check (used only for records no decision depends on). Built on every call that writes:
    a tuple, immutable and cheap.
    """

    expected: Mapping[str, int]
    writes: Mapping[str, Any]
    events: tuple[OutboxEntry, ...] = ()
    acks: Mapping[str, tuple[str, ...]] = _EMPTY  # event id → consumers still owed (() = done)
    expires: Mapping[str, datetime] = _EMPTY  # written keys the store may drop after then
    now: datetime | None = None  # the engine's time: keys whose expiry is before it may be dropped
    group: str | None = None  # the customer group every key of the commit belongs to (stores that shard by it)


@dataclass(frozen=True, slots=True)
class CommitResult:
    ok: bool
    fresh: Mapping[str, Versioned] = field(default_factory=dict)  # current records of keys that moved, if known

    def __bool__(self) -> bool:
        return self.ok


OK = CommitResult(True)
CONFLICT = CommitResult(False)


@runtime_checkable
class Store(Protocol):
    url: str
    encoded: bool  # True: values are JSON text, encoded and decoded by the engine
    remote: bool  # True: reads cost a round trip, so the engine may decide on cached records

    def read(self, keys: list[str], group: str | None = None) -> dict[str, Versioned]:
        """The current version and value of each key (ABSENT for missing keys). `group`: the customer group the
        keys belong to, on a store that shards by it (others ignore it)."""
        ...

    def commit(self, commit: Commit) -> CommitResult:
        """Apply every write, outbox entry and ack atomically if every expected version still holds."""
        ...

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """Every (key, value) whose key starts with `prefix` (for exports; not used on the hot path)."""
        ...

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        """Outbox entries still owed to some consumer (oldest first)."""
        ...

    def close(self) -> None: ...
