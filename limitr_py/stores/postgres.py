"""`postgresql://…`: transactions with row locks (psycopg 3). The schema is created on first use.

A commit locks the rows it expects (`SELECT … FOR UPDATE`, in key order so two commits never deadlock), checks
their versions, and writes. A key expected to be absent cannot be locked, so creating one is `INSERT … ON
CONFLICT DO NOTHING` and a commit that finds the row already there rolls back as a conflict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors

from limitr_py.errors import StoreError
from limitr_py.stores.base import ABSENT, CONFLICT, OK, Commit, CommitResult, OutboxEntry, Versioned
from limitr_py.stores.sql import ThreadConnections, write_outbox

SCHEMA = """
CREATE TABLE IF NOT EXISTS limitr_records (
    key TEXT PRIMARY KEY, version BIGINT NOT NULL, value TEXT, expires TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS limitr_records_expires ON limitr_records (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS limitr_outbox (
    seq BIGSERIAL PRIMARY KEY, id TEXT UNIQUE NOT NULL, grp TEXT NOT NULL, body TEXT NOT NULL, consumers TEXT NOT NULL
);
"""
PURGE_EVERY = timedelta(minutes=1)
"""Expired records (idempotency keys, settled holds) are deleted at most this often, by engine time."""
_SCHEMA_LOCK = 7_307_313  # advisory lock id: two processes creating the schema at once take turns


class _Conflict(Exception):
    pass


class PostgresStore:
    encoded = True
    remote = True

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
        options = parse_qs(parts.query)
        self.prefix = options.pop("prefix", [""])[0]
        self._p = f"{self.prefix}:" if self.prefix else ""
        query = "&".join(f"{k}={v}" for k, values in options.items() for v in values)
        self._dsn = urlunsplit(parts._replace(query=query))
        self._connections: ThreadConnections[psycopg.Connection[Any]] = ThreadConnections(
            self._connect, lambda conn: not conn.closed)
        self._purged: datetime | None = None
        try:
            with self._conn().transaction():
                conn = self._conn()
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in filter(str.strip, SCHEMA.split(";")):
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise StoreError(f"cannot use `{url}`: {exc}") from None

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach `{self.url}`: {exc}") from None

    def _conn(self) -> psycopg.Connection[Any]:
        return self._connections.get()

    def read(self, keys: list[str]) -> dict[str, Versioned]:
        out = dict.fromkeys(keys, ABSENT)
        cut = len(self._p)
        try:
            rows = self._conn().execute("SELECT key, version, value FROM limitr_records WHERE key = ANY(%s)",
                                        ([self._p + k for k in keys],))
            for key, version, value in rows:
                out[key[cut:]] = Versioned(version, value)
        except psycopg.Error as exc:
            raise StoreError(f"reading `{self.url}` failed: {exc}") from None
        return out

    def commit(self, commit: Commit) -> CommitResult:
        conn = self._conn()
        try:
            with conn.transaction():
                self._apply(conn, self._prefixed(commit))
        except (_Conflict, pg_errors.UniqueViolation, pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
            return CONFLICT
        except psycopg.Error as exc:
            raise StoreError(f"commit to `{self.url}` failed: {exc}") from None
        return OK

    def _prefixed(self, commit: Commit) -> Commit:
        if not self._p:
            return commit
        p = self._p
        return Commit({p + k: v for k, v in commit.expected.items()}, {p + k: v for k, v in commit.writes.items()},
                      tuple(OutboxEntry(e.id, p + e.group, e.body, e.consumers) for e in commit.events), commit.acks,
                      {p + k: v for k, v in commit.expires.items()}, commit.now)

    def _apply(self, conn: psycopg.Connection[Any], commit: Commit) -> None:
        # lock every expected row in one global key order (two commits can then never wait on each other in a
        # cycle); a key expected absent is created as a version-0 placeholder, which locks it just the same
        for key in sorted(commit.expected):
            want = commit.expected[key]
            if want == 0:
                conn.execute("INSERT INTO limitr_records (key, version, value, expires) VALUES (%s, 0, NULL, NULL) "
                             "ON CONFLICT (key) DO NOTHING", (key,))
            row = conn.execute("SELECT version FROM limitr_records WHERE key = %s FOR UPDATE", (key,)).fetchone()
            if (row[0] if row else 0) != want:
                raise _Conflict
        for key, value in commit.writes.items():
            expires = commit.expires.get(key)
            conn.execute(
                "INSERT INTO limitr_records (key, version, value, expires) VALUES (%s, 1, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET version = limitr_records.version + 1, value = excluded.value, "
                "expires = excluded.expires", (key, value, expires))
        write_outbox(conn.execute, commit, "%s")
        if commit.now is not None and (self._purged is None or commit.now - self._purged >= PURGE_EVERY):
            self._purged = commit.now
            conn.execute("DELETE FROM limitr_records WHERE expires IS NOT NULL AND expires < %s AND "
                         "starts_with(key, %s)", (commit.now, self._p))

    def scan(self, prefix: str) -> Iterator[tuple[str, str]]:
        cut = len(self._p)
        rows = self._conn().execute("SELECT key, value FROM limitr_records WHERE starts_with(key, %s) "
                                    "AND value IS NOT NULL ORDER BY key", (self._p + prefix,)).fetchall()
        for key, value in rows:
            yield key[cut:], value

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        rows = self._conn().execute("SELECT id, grp, body, consumers FROM limitr_outbox WHERE starts_with(grp, %s) "
                                    "ORDER BY seq LIMIT %s", (self._p, limit)).fetchall()
        return [OutboxEntry(i, g[len(self._p):], b, tuple(json.loads(c))) for i, g, b, c in rows]

    def flush(self) -> None:
        """Delete every record and outbox entry (tests)."""
        conn = self._conn()
        conn.execute("DELETE FROM limitr_records WHERE starts_with(key, %s)", (self._p,))
        conn.execute("DELETE FROM limitr_outbox WHERE starts_with(grp, %s)", (self._p,))

    def close(self) -> None:
        self._connections.close()
