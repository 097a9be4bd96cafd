"""`sqlite:///path/to/file.db`: embedded and durable; safe for several processes on one machine.

WAL journal, `synchronous=FULL` (a commit survives power loss), and `BEGIN IMMEDIATE` for every commit, so the
version check and the writes happen under the database's write lock: two processes can never both pass a check
on the same record. One connection per thread (and per process after a fork).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from limitr_py.errors import InvalidArgumentError, StoreError
from limitr_py.stores.base import ABSENT, CONFLICT, OK, Commit, CommitResult, OutboxEntry, Versioned
from limitr_py.stores.sql import ThreadConnections, one_record, purge_due, write_outbox

SCHEMA = """
CREATE TABLE IF NOT EXISTS limitr_records (
    key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT, expires TEXT
);
CREATE INDEX IF NOT EXISTS limitr_records_expires ON limitr_records (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS limitr_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, grp TEXT NOT NULL, body TEXT NOT NULL,
    consumers TEXT NOT NULL
);
"""
BUSY_TIMEOUT_S = 30.0


def path_of(url: str) -> str:
    """`sqlite:///relative.db` → `relative.db`; `sqlite:////abs/file.db` → `/abs/file.db`."""
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise InvalidArgumentError(f"a SQLite store URL is `sqlite:///path/to/file.db`, got `{url}`")
    return url[len("sqlite:///") :]


class SQLiteStore:
    encoded = True
    remote = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_of(url)
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise StoreError(f"cannot open `{url}`: directory `{parent}` does not exist")
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file the store opened
        self._connections = ThreadConnections(self._connect)
        self._purged: datetime | None = None
        with self._tx() as conn:
            conn.executescript(SCHEMA)
        self._identity = self._file_identity()

    def _file_identity(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StoreError(
                f"`{self.url}` is gone: {exc.strerror} (the database file was deleted or moved; "
                f"refusing to answer from a file no other process sees)"
            ) from None
        return st.st_dev, st.st_ino

    def _check_file(self) -> None:
        """Fail closed when the file was deleted or replaced since the store opened it: an open connection would
        go on writing into the unlinked file, and everything it commits would be lost to every other engine."""
        if self._file_identity() != self._identity:
            raise StoreError(f"`{self.url}` was replaced by another file since it was opened; reopen the store")

    def _connect(self) -> sqlite3.Connection:
        # after the first connection, never create the file: a missing file is an error, not a fresh database
        target, uri = self.path, False
        if self._identity is not None:
            target, uri = f"file:{quote(os.path.abspath(self.path))}?mode=rw", True
        try:
            conn = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri, check_same_thread=False
            )  # used by one thread; closed by close()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open `{self.url}`: {exc}") from None
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._identity is not None:
            self._check_file()
        return self._connections.get()

    def _tx(self) -> _Transaction:
        return _Transaction(self._conn(), self.url)

    def read(self, keys: list[str], group: str | None = None) -> dict[str, Versioned]:  # one shard: no groups
        out = dict.fromkeys(keys, ABSENT)
        try:
            rows = self._conn().execute(
                f"SELECT key, version, value FROM limitr_records WHERE key IN ({','.join('?' * len(keys))})", keys
            )
            for key, version, value in rows:
                out[key] = Versioned(version, value)
        except sqlite3.Error as exc:
            raise StoreError(f"reading `{self.url}` failed: {exc}") from None
        return out

    def commit(self, commit: Commit) -> CommitResult:
        if one_record(commit) and purge_due(self._purged, commit) is None and not _deletes_an_absent_record(commit):
            return OK if self._compare_and_set(commit) else CONFLICT
        with self._tx() as conn:
            keys = list(commit.expected)
            if keys:
                have = dict(
                    conn.execute(
                        f"SELECT key, version FROM limitr_records WHERE key IN ({','.join('?' * len(keys))})", keys
                    )
                )
                if any(have.get(key, 0) != version for key, version in commit.expected.items()):
                    conn.rollback_requested = True
                    return CONFLICT
            for key, value in commit.writes.items():
                if value is None:  # a deleted record keeps its version: a stale reader can never match a new one
                    conn.execute(
                        "UPDATE limitr_records SET version = version + 1, value = NULL, expires = NULL WHERE key = ?",
                        (key,),
                    )
                    continue
                expires = commit.expires.get(key)
                conn.execute(
                    "INSERT INTO limitr_records (key, version, value, expires) VALUES (?, 1, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET version = version + 1, value = excluded.value, "
                    "expires = excluded.expires",
                    (key, value, expires.isoformat() if expires else None),
                )
            write_outbox(conn.execute, commit, "?")
            now = purge_due(self._purged, commit)
            if now is not None:
                self._purged = now
                conn.execute("DELETE FROM limitr_records WHERE expires IS NOT NULL AND expires < ?", (now.isoformat(),))
        return OK

    def _compare_and_set(self, commit: Commit) -> bool:
        """Write the one record if its version is still the one read: a single statement, atomic on its own (no
        BEGIN IMMEDIATE, no SELECT of the versions, no COMMIT: one round into SQLite instead of four)."""
        ((key, want),) = commit.expected.items()
        value, expires = commit.writes[key], commit.expires.get(key)
        stamp = expires.isoformat() if expires else None
        try:
            conn = self._conn()
            if want == 0:  # expected absent: a row of any version means another writer came first
                cursor = conn.execute(
                    "INSERT INTO limitr_records (key, version, value, expires) VALUES (?, 1, ?, ?) "
                    "ON CONFLICT (key) DO NOTHING",
                    (key, value, stamp),
                )
            else:  # a deleted record (value None) keeps its version, as the general path writes it
                cursor = conn.execute(
                    "UPDATE limitr_records SET version = version + 1, value = ?, expires = ? "
                    "WHERE key = ? AND version = ?",
                    (value, stamp, key, want),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"commit to `{self.url}` failed: {exc}") from None
        return cursor.rowcount == 1

    def scan(self, prefix: str) -> Iterator[tuple[str, str]]:
        rows = (
            self._conn()
            .execute(
                "SELECT key, value FROM limitr_records WHERE key >= ? AND key < ? AND value IS NOT NULL ORDER BY key",
                (prefix, prefix + "\U0010ffff"),
            )
            .fetchall()
        )
        yield from rows

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        rows = (
            self._conn()
            .execute("SELECT id, grp, body, consumers FROM limitr_outbox ORDER BY seq LIMIT ?", (limit,))
            .fetchall()
        )
        return [OutboxEntry(i, g, b, tuple(json.loads(c))) for i, g, b, c in rows]

    def close(self) -> None:
        self._connections.close()


def _deletes_an_absent_record(commit: Commit) -> bool:
    """The general path leaves no row for such a delete; a compare-and-set insert would leave one."""
    ((key, want),) = commit.expected.items()
    return want == 0 and commit.writes[key] is None


class _Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on an error or a failed version check)."""

    def __init__(self, conn: sqlite3.Connection, url: str) -> None:
        self.conn = conn
        self.url = url
        self.rollback_requested = False

    def __enter__(self) -> _Transaction:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to `{self.url}`: {exc}") from None
        return self

    def execute(self, sql: str, params: object = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)  # type: ignore[arg-type]

    def executescript(self, sql: str) -> None:
        for statement in filter(str.strip, sql.split(";")):
            self.conn.execute(statement)

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            if kind is None and not self.rollback_requested:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error as error:
            raise StoreError(f"commit to `{self.url}` failed: {error}") from None
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"writing to `{self.url}` failed: {exc}") from None
