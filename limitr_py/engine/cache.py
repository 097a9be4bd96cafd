"""This process's copies of records of a remote store (Redis, PostgreSQL), shared by every thread of the engine.

A decision may start from these copies, but no answer rests on them unconfirmed: a commit checks the versions it
read, and an answer that writes nothing re-reads them (`Runner.confirm` in engine/txn.py). The cache itself only
has to be safe under threads: two threads' reads of one key can land in either order, so a copy never moves
back to an older version than the one it holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from limitr_py.stores.base import Versioned

CACHE_LIMIT = 100_000
"""Copies kept before the cache starts afresh (a bound on memory, not a tuning knob)."""


class RecordCache:
    """key → the newest Versioned this process has seen; keys with a `skip` prefix are never kept."""

    def __init__(self, skip: tuple[str, ...] = (), limit: int = CACHE_LIMIT) -> None:
        self._data: dict[str, Versioned] = {}
        self._lock = threading.Lock()
        self._skip = skip
        self._limit = limit

    def get(self, key: str) -> Versioned | None:
        return self._data.get(key)  # one dict lookup of an immutable pair: safe without the lock

    def put(self, records: Iterable[tuple[str, Versioned]]) -> None:
        """Keep each record unless the cache already holds a newer version of it."""
        with self._lock:
            data = self._data
            if len(data) > self._limit:
                data.clear()
            for key, record in records:
                if key.startswith(self._skip):
                    continue
                held = data.get(key)
                if held is None or record.version >= held.version:
                    data[key] = record

    def drop(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)
