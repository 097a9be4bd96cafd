"""`memory://`: a thread-safe in-process store. The default of `Limitr.new` in code and tests.

Reads take no lock (one dict lookup returns an immutable (version, value) pair). A commit locks only the stripes
of the keys it touches, in a fixed order, so calls for different customers never wait on each other.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from limitr_py.stores.base import ABSENT, CONFLICT, OK, Commit, CommitResult, OutboxEntry, Versioned

_STRIPES = 64


class MemoryStore:
    encoded = False
    remote = False

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._data: dict[str, Versioned] = {}
        self._locks = [threading.Lock() for _ in range(_STRIPES)]
        self._expiry: list[tuple[datetime, str]] = []  # (when, key), oldest first; stale once rewritten
        self._expires_at: dict[str, datetime] = {}  # each key's time in force, as the SQL stores' column
        self._expiry_lock = threading.Lock()
        self._outbox: dict[str, OutboxEntry] = {}  # insertion-ordered: oldest first
        self._outbox_lock = threading.Lock()

    def read(self, keys: list[str], group: str | None = None) -> dict[str, Versioned]:  # one shard: no groups
        data = self._data
        return {key: data.get(key, ABSENT) for key in keys}

    def commit(self, commit: Commit) -> CommitResult:
        keys = commit.expected.keys() | commit.writes.keys()
        if len(keys) == 1:  # the common call: one customer, one lock
            locks = [self._locks[hash(next(iter(keys))) % _STRIPES]]
        else:
            locks = [self._locks[i] for i in sorted({hash(key) % _STRIPES for key in keys})]
        for lock in locks:
            lock.acquire()
        try:
            data = self._data
            for key, version in commit.expected.items():
                if data.get(key, ABSENT).version != version:
                    return CONFLICT
            for key, value in commit.writes.items():
                # a deleted record keeps its version (value None), so a stale reader can never match a new one
                data[key] = Versioned(data.get(key, ABSENT).version + 1, value)
            if commit.events or commit.acks:
                self._outbox_apply(commit)
        finally:
            for lock in reversed(locks):
                lock.release()
        if commit.expires or commit.now is not None or self._expires_at:
            self._expire(commit)
        return OK

    def _outbox_apply(self, commit: Commit) -> None:
        with self._outbox_lock:
            for entry in commit.events:
                self._outbox[entry.id] = entry
            for event_id, owed in commit.acks.items():
                stored = self._outbox.get(event_id)
                if stored is None:
                    continue
                if owed:
                    self._outbox[event_id] = OutboxEntry(stored.id, stored.group, stored.body, owed)
                else:
                    del self._outbox[event_id]

    def _expire(self, commit: Commit) -> None:
        """Remember when written keys may go (a key written again takes the new commit's time, or none), and drop
        those whose time has passed (oldest first)."""
        with self._expiry_lock:
            if self._expires_at:
                for key in commit.writes.keys() - commit.expires.keys():
                    self._expires_at.pop(key, None)
            for key, when in commit.expires.items():
                self._expires_at[key] = when
                heapq.heappush(self._expiry, (when, key))
            while self._expiry and commit.now is not None and self._expiry[0][0] < commit.now:
                when, key = heapq.heappop(self._expiry)
                if self._expires_at.get(key) != when:
                    continue  # written again since: its newer time (or none) stands
                del self._expires_at[key]
                with self._locks[hash(key) % _STRIPES]:
                    self._data.pop(key, None)

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        for key, record in list(self._data.items()):
            if key.startswith(prefix) and record.value is not None:
                yield key, record.value

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        with self._outbox_lock:
            return list(self._outbox.values())[:limit]

    def close(self) -> None:
        """Nothing to release: the data lives as long as the store object."""
