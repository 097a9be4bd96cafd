"""What the SQL stores share: connections per thread (SQLite; PostgreSQL uses a pool), the outbox statements
of a commit (SQLite's; PostgreSQL's are inside its commit function), and which commits one statement does."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from limitr_py.stores.base import Commit

C = TypeVar("C")


def write_outbox(execute: Callable[[str, tuple[Any, ...]], Any], commit: Commit, mark: str) -> None:
    """Insert the commit's outbox entries and apply its acks; `mark` is the driver's placeholder (`?`)."""
    for entry in commit.events:
        row = (entry.id, entry.group, entry.body, json.dumps(entry.consumers))
        execute(f"INSERT INTO limitr_outbox (id, grp, body, consumers) VALUES ({mark}, {mark}, {mark}, {mark})", row)
    for event_id, owed in commit.acks.items():
        if owed:
            execute(f"UPDATE limitr_outbox SET consumers = {mark} WHERE id = {mark}", (json.dumps(owed), event_id))
        else:
            execute(f"DELETE FROM limitr_outbox WHERE id = {mark}", (event_id,))


PURGE_EVERY = timedelta(minutes=1)
"""Expired records (idempotency keys, settled holds) are deleted at most this often, by engine time."""


def purge_due(last: datetime | None, commit: Commit) -> datetime | None:
    """The commit's time when expired records are due to be deleted with it (`last`: when they last were),
    else None."""
    now = commit.now
    return now if now is not None and (last is None or now - last >= PURGE_EVERY) else None


def one_record(commit: Commit) -> bool:
    """A commit that checks and writes one record and nothing else (a steady-state `allow()` without events):
    one compare-and-set statement does it, with no transaction around it."""
    return (
        len(commit.expected) == 1
        and commit.writes.keys() == commit.expected.keys()
        and not commit.events
        and not commit.acks
    )


class ThreadConnections(Generic[C]):
    """One connection per thread (and per process: a forked child opens its own), all closed by `close()`.

    Connections are held here until then, so a thread's exit never leaves one for the garbage collector.
    """

    def __init__(self, open_connection: Callable[[], C], is_open: Callable[[C], bool] = lambda c: True) -> None:
        self._open = open_connection
        self._is_open = is_open
        self._local = threading.local()
        self._all: list[tuple[int, C]] = []
        self._lock = threading.Lock()

    def get(self) -> C:
        conn: C | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid() or not self._is_open(conn):
            conn = self._open()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._all.append((os.getpid(), conn))
        return conn

    def close(self) -> None:
        with self._lock:
            for pid, conn in self._all:
                if pid == os.getpid():  # a forked child must not close its parent's connections
                    conn.close()  # type: ignore[attr-defined]
            self._all.clear()
        self._local = threading.local()
