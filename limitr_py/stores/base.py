"""The one storage protocol every backend implements (DESIGN.md Storage).

A store is a versioned key → record map with an all-or-nothing, version-checked commit. It knows nothing about
plans or meters: the engine names the keys, reads a snapshot, decides with pure code, and commits what changed
together with the versions it read. A commit whose expected versions no longer hold writes nothing and returns
False; the engine then re-reads and decides again.

Version 0 means "absent": expecting version 0 makes a write create-only, which is how an idempotency key is
recorded in the same commit as its effect. Records that only need to outlive retries (idempotency keys, settled
holds) carry an expiry; a store drops them once a commit's `now` is past it. Stores never read a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Versioned:
    """A record as read: its version (0 = absent) and value (None when absent)."""

    version: int
    value: Any = None


ABSENT = Versioned(0, None)


@dataclass(frozen=True, slots=True)
class Commit:
    """What one engine call changes: every key it read with the version it saw, and the new values.

    `writes` maps a key to its new value, or to None to delete it. Keys in `writes` that are not in `expected`
    are written without a check (used only for records no decision depends on).
    """

    expected: Mapping[str, int]
    writes: Mapping[str, Any]
    events: tuple[Any, ...] = field(default=())
    expires: Mapping[str, datetime] = field(default_factory=dict)  # written keys the store may drop after then
    now: datetime | None = None  # the engine's time: keys whose expiry is before it may be dropped


@runtime_checkable
class Store(Protocol):
    url: str

    def read(self, keys: list[str]) -> dict[str, Versioned]:
        """The current version and value of each key (ABSENT for missing keys)."""
        ...

    def commit(self, commit: Commit) -> bool:
        """Apply every write atomically if every expected version still holds; False (and nothing) otherwise."""
        ...

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """Every (key, value) whose key starts with `prefix` (for exports; not used on the hot path)."""
        ...

    def close(self) -> None: ...
