"""`postgresql://…`: transactions with row locks (psycopg 3). The schema is created on first use.

Connections come from a pool (psycopg_pool) shared by the store's threads: at most `?pool_max_size=` (default
10) are open at once, idle ones beyond the first close after 10 minutes, so short-lived threads leave nothing
behind. A connection the server ended is dropped by the pool when it comes back with the error.

A commit is one statement, so one round trip: a change of one record is a compare-and-set (`UPDATE … WHERE
version = v`); any other commit calls `limitr_commit_v1`, which locks the rows it expects (`SELECT … FOR
UPDATE`, in key order so two commits never deadlock), checks their versions and writes records, outbox entries and
acks, or raises a conflict that undoes all of it. A key expected absent cannot be locked: it gets a version-0
placeholder for the length of the statement, and none is left behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from limitr_py.errors import InvalidArgumentError, StoreError
from limitr_py.stores import url_options
from limitr_py.stores.base import ABSENT, CONFLICT, OK, Commit, CommitResult, OutboxEntry, Versioned
from limitr_py.stores.sql import one_record, purge_due

SCHEMA = """
CREATE TABLE IF NOT EXISTS limitr_records (
    key TEXT PRIMARY KEY, version BIGINT NOT NULL, value TEXT, expires TIMESTAMPTZ, ns TEXT
);
CREATE INDEX IF NOT EXISTS limitr_records_expires ON limitr_records (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS limitr_outbox (
    seq BIGSERIAL PRIMARY KEY, id TEXT UNIQUE NOT NULL, grp TEXT NOT NULL, body TEXT NOT NULL, consumers TEXT NOT NULL,
    ns TEXT
);
ALTER TABLE limitr_records ADD COLUMN IF NOT EXISTS ns TEXT;
ALTER TABLE limitr_outbox ADD COLUMN IF NOT EXISTS ns TEXT;
CREATE INDEX IF NOT EXISTS limitr_records_ns ON limitr_records (ns, key);
CREATE INDEX IF NOT EXISTS limitr_outbox_ns ON limitr_outbox (ns, seq);
"""
COMMIT_FUNCTION = """
CREATE OR REPLACE FUNCTION limitr_commit_v1(
    exp_keys TEXT[], exp_versions BIGINT[], w_keys TEXT[], w_values TEXT[], w_expires TIMESTAMPTZ[],
    ob_ids TEXT[], ob_groups TEXT[], ob_bodies TEXT[], ob_consumers TEXT[], ack_ids TEXT[], ack_owed TEXT[],
    row_ns TEXT, purge_before TIMESTAMPTZ, purge_prefix TEXT
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    k TEXT;
    want BIGINT;
    have BIGINT;
    placed TEXT[] := '{}';
BEGIN
    -- Lock every expected row in one global key order (two commits then never wait on each other in a cycle).
    -- A key expected absent cannot be locked, so it gets a version-0 placeholder for the length of this
    -- statement: a concurrent commit that wants it waits on the placeholder's unique-index entry.
    FOR k, want IN SELECT e.k, e.v FROM unnest(exp_keys, exp_versions) AS e(k, v) ORDER BY e.k LOOP
        IF want = 0 THEN
            INSERT INTO limitr_records (key, version, value, expires, ns) VALUES (k, 0, NULL, NULL, row_ns)
                ON CONFLICT (key) DO NOTHING;
            IF FOUND THEN
                placed := placed || k;
            END IF;
        END IF;
        SELECT r.version INTO have FROM limitr_records AS r WHERE r.key = k FOR UPDATE;
        IF have IS DISTINCT FROM want THEN
            RAISE EXCEPTION 'limitr: a record moved since it was read' USING ERRCODE = 'LR409';
        END IF;
    END LOOP;
    INSERT INTO limitr_records AS r (key, version, value, expires, ns)
        SELECT w.k, 1, w.v, w.e, row_ns FROM unnest(w_keys, w_values, w_expires) AS w(k, v, e)
        ON CONFLICT (key) DO UPDATE SET version = r.version + 1, value = excluded.value,
            expires = excluded.expires, ns = excluded.ns;
    DELETE FROM limitr_records WHERE key = ANY(placed) AND NOT key = ANY(w_keys);  -- no placeholder outlives it
    INSERT INTO limitr_outbox (id, grp, body, consumers, ns)
        SELECT o.i, o.g, o.b, o.c, row_ns FROM unnest(ob_ids, ob_groups, ob_bodies, ob_consumers)
            WITH ORDINALITY AS o(i, g, b, c, n) ORDER BY o.n;
    UPDATE limitr_outbox AS o SET consumers = a.owed FROM unnest(ack_ids, ack_owed) AS a(i, owed)
        WHERE o.id = a.i AND a.owed IS NOT NULL;
    DELETE FROM limitr_outbox AS o USING unnest(ack_ids, ack_owed) AS a(i, owed)
        WHERE o.id = a.i AND a.owed IS NULL;
    IF purge_before IS NOT NULL THEN
        DELETE FROM limitr_records WHERE expires IS NOT NULL AND expires < purge_before
            AND (ns = row_ns OR (ns IS NULL AND starts_with(key, purge_prefix)));
    END IF;
END
$$
"""
"""A commit of several records (or with events) in one statement, so one round trip: a single statement runs in a
transaction of its own, so a conflict raised halfway (SQLSTATE LR409) undoes everything it did."""
_CONFLICT_STATE = "LR409"

# A `?prefix=` is an exact namespace: every row carries it in `ns` ('' without a prefix), and listing, flushing,
# purging and the outbox select by `ns`. Keys still start with `prefix:` (the 0.1 layout, so their rows keep
# their identity); rows 0.1 wrote have no `ns` until they are next written, and are matched by that prefix.
_MINE = "(ns = %s OR (ns IS NULL AND starts_with({column}, %s)))"
_OURS = frozenset({"prefix", "pool_max_size"})
POOL_MAX_SIZE = 10
"""Connections a store keeps open at most by default (`?pool_max_size=` sets it, 1 to 1,000)."""
_BAD_OPTION = ("connection option", "bad value for", "value:")
"""How libpq and psycopg word a malformed URL option (a usage error, not an unreachable server)."""
_SCHEMA_LOCK = 7_307_313  # advisory lock id: two processes creating the schema at once take turns


class PostgresStore:
    encoded = True
    remote = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._shown = url_options.redact(url)  # messages never show a password
        mine, driver = url_options.split(url, _OURS)
        self.prefix = url_options.namespace(mine["prefix"], "prefix", url) if "prefix" in mine else ""
        self._p = f"{self.prefix}:" if self.prefix else ""
        self._dsn = url_options.with_query(url.replace("postgres://", "postgresql://", 1), driver)
        try:
            # our default of 10 s unless the URL sets its own
            self._timeout = None if "connect_timeout" in conninfo.conninfo_to_dict(self._dsn) else 10
        except psycopg.ProgrammingError as exc:  # libpq's own check of the option names
            raise InvalidArgumentError(f"{' '.join(str(exc).split())} in store URL `{self._shown}`") from None
        size = mine.get("pool_max_size")
        self._pool_max = url_options.whole_number(size, "pool_max_size", url, 1, 1000) if size else POOL_MAX_SIZE
        self._purged: datetime | None = None
        # the first connection is made here, by hand, so an unreachable server or a bad option is reported at once
        # and in our words (the pool would retry in the background); it then serves the schema check
        first = self._connect()
        try:
            # DDL takes table locks even when it changes nothing, and would wait on (or deadlock with) other
            # processes' commits: it runs only when the schema is not current yet, one process at a time.
            if not self._schema_current(first):
                with first.transaction():
                    first.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    for statement in filter(str.strip, SCHEMA.split(";")):
                        first.execute(statement)
                    first.execute(COMMIT_FUNCTION)
        except psycopg.Error as exc:
            raise StoreError(f"cannot use `{self._shown}`: {exc}") from None
        finally:
            first.close()
        self._pool, self._pid = self._new_pool(), os.getpid()

    def _connect_args(self) -> dict[str, Any]:
        return {"autocommit": True} if self._timeout is None else {"autocommit": True, "connect_timeout": self._timeout}

    def _new_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        return ConnectionPool(
            self._dsn,
            kwargs=self._connect_args(),
            min_size=1,
            max_size=self._pool_max,
            timeout=self._timeout or 30.0,  # waiting for a free connection: then a StoreError, never a hang
            open=True,
            name=f"limitr {self._shown}",
        )

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool for one operation. A forked child makes a pool of its own (the parent's
        connections and worker threads are not its to use). When the server has ended a connection (a restart,
        `pg_terminate_backend`), the others idle in the pool are likely gone too: the pool checks them all, so
        the call that saw the error fails and the next one gets a live connection."""
        if self._pid != os.getpid():
            self._pool, self._pid = self._new_pool(), os.getpid()
        broken = False
        try:
            with self._pool.connection() as conn:
                try:
                    yield conn
                except psycopg.OperationalError:
                    broken = conn.broken
                    raise
        finally:
            if broken:
                self._pool.check()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._dsn, **self._connect_args())
        except psycopg.Error as exc:
            message = " ".join(str(exc).split())
            if any(sign in message for sign in _BAD_OPTION):
                raise InvalidArgumentError(f"{message} in store URL `{self._shown}`") from None
            raise StoreError(f"cannot reach `{self._shown}`: {message}") from None

    def _schema_current(self, conn: psycopg.Connection[Any]) -> bool:
        found = conn.execute(
            "SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(%s)) "
            "+ (SELECT count(*) FROM pg_proc WHERE proname = 'limitr_commit_v1' "
            "AND pronamespace = current_schema()::regnamespace)",
            (["limitr_records_expires", "limitr_records_ns", "limitr_outbox_ns"],),
        ).fetchone()
        return bool(found and found[0] == 4)

    def _mine(self, column: str) -> tuple[str, tuple[str, str]]:
        return _MINE.format(column=column), (self.prefix, self._p)

    def read(self, keys: list[str], group: str | None = None) -> dict[str, Versioned]:  # one shard: no groups
        out = dict.fromkeys(keys, ABSENT)
        cut = len(self._p)
        try:
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT key, version, value FROM limitr_records WHERE key = ANY(%s)",
                    ([self._p + k for k in keys],),
                ).fetchall()
            for key, version, value in rows:
                out[key[cut:]] = Versioned(version, value)
        except psycopg.Error as exc:
            raise StoreError(f"reading `{self._shown}` failed: {exc}") from None
        return out

    def commit(self, commit: Commit) -> CommitResult:
        commit = self._prefixed(commit)
        try:
            with self._conn() as conn:
                if one_record(commit) and purge_due(self._purged, commit) is None:
                    return OK if self._compare_and_set(conn, commit) else CONFLICT
                self._apply(conn, commit)
        except (pg_errors.UniqueViolation, pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
            return CONFLICT
        except psycopg.Error as exc:
            if exc.sqlstate == _CONFLICT_STATE:
                return CONFLICT
            raise StoreError(f"commit to `{self._shown}` failed: {exc}") from None
        return OK

    def _prefixed(self, commit: Commit) -> Commit:
        if not self._p:
            return commit
        p = self._p
        return Commit(
            {p + k: v for k, v in commit.expected.items()},
            {p + k: v for k, v in commit.writes.items()},
            tuple(OutboxEntry(e.id, p + e.group, e.body, e.consumers) for e in commit.events),
            commit.acks,
            {p + k: v for k, v in commit.expires.items()},
            commit.now,
        )

    def _compare_and_set(self, conn: psycopg.Connection[Any], commit: Commit) -> bool:
        """Write the one record if its version is still the one read: a single atomic statement. A record
        expected absent may exist as a version-0 placeholder (written by 0.1 and by the general path)."""
        ((key, want),) = commit.expected.items()
        value, expires = commit.writes[key], commit.expires.get(key)
        if want == 0:
            cursor = conn.execute(
                "INSERT INTO limitr_records (key, version, value, expires, ns) VALUES (%s, 1, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET version = 1, value = excluded.value, expires = excluded.expires, "
                "ns = excluded.ns WHERE limitr_records.version = 0",
                (key, value, expires, self.prefix),
            )
        else:
            cursor = conn.execute(
                "UPDATE limitr_records SET version = version + 1, value = %s, expires = %s, ns = %s "
                "WHERE key = %s AND version = %s",
                (value, expires, self.prefix, key, want),
            )
        return cursor.rowcount == 1

    def _apply(self, conn: psycopg.Connection[Any], commit: Commit) -> None:
        """Any other commit: one call of limitr_commit_v1 (see COMMIT_FUNCTION), in autocommit."""
        expected = sorted(commit.expected.items())
        writes = list(commit.writes.items())
        now = purge_due(self._purged, commit)
        conn.execute(
            "SELECT limitr_commit_v1(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[], "
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s, %s, %s)",
            (
                [k for k, _ in expected],
                [v for _, v in expected],
                [k for k, _ in writes],
                [v for _, v in writes],
                [commit.expires.get(k) for k, _ in writes],
                [e.id for e in commit.events],
                [e.group for e in commit.events],
                [e.body for e in commit.events],
                [json.dumps(e.consumers) for e in commit.events],
                list(commit.acks),
                [json.dumps(owed) if owed else None for owed in commit.acks.values()],
                self.prefix,
                now,
                self._p,
            ),
        )
        if now is not None:
            self._purged = now

    def scan(self, prefix: str) -> Iterator[tuple[str, str]]:
        cut = len(self._p)
        where, args = self._mine("key")
        try:
            with self._conn() as conn:
                rows = conn.execute(
                    f"SELECT key, value FROM limitr_records WHERE {where} AND "
                    "starts_with(key, %s) AND value IS NOT NULL ORDER BY key",
                    (*args, self._p + prefix),
                ).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"scanning `{self._shown}` failed: {exc}") from None
        for key, value in rows:
            yield key[cut:], value

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        where, args = self._mine("grp")
        try:
            with self._conn() as conn:
                rows = conn.execute(
                    f"SELECT id, grp, body, consumers FROM limitr_outbox WHERE {where} ORDER BY seq LIMIT %s",
                    (*args, limit),
                ).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"reading the outbox of `{self._shown}` failed: {exc}") from None
        return [OutboxEntry(i, g[len(self._p) :], b, tuple(json.loads(c))) for i, g, b, c in rows]

    def flush(self) -> None:
        """Delete every record and outbox entry of this namespace (tests)."""
        try:
            with self._conn() as conn:
                where, args = self._mine("key")
                conn.execute(f"DELETE FROM limitr_records WHERE {where}", args)
                where, args = self._mine("grp")
                conn.execute(f"DELETE FROM limitr_outbox WHERE {where}", args)
        except psycopg.Error as exc:
            raise StoreError(f"flushing `{self._shown}` failed: {exc}") from None

    def close(self) -> None:
        if self._pid == os.getpid():  # a forked child must not close its parent's connections
            self._pool.close()
