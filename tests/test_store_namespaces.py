"""Store URLs: `?prefix=` is an exact namespace, driver options reach the driver, bad options are refused by name
(issue 10, item 11 and "PostgreSQL and Redis URL options").

PostgreSQL namespaces are tested in a schema of their own (through the URL's `options=-c search_path=…`, which is
itself one of the encoded options that used to fail), so an engine without a prefix sees only what this test
wrote; the schema is dropped afterwards. Redis namespaces use fresh prefixes and delete their keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from limitr_py import InvalidArgumentError, Limitr, StoreError
from limitr_py.stores import open_store
from tests import backends
from tests.test_store_faults import DOC


def _failing(event: Any) -> None:
    raise RuntimeError("keeps the event pending")


def _fill(url: str, customer: str) -> None:
    with Limitr.new(DOC, store=url) as engine:
        engine.on("meter-changed", _failing)  # its event stays in the outbox: pending() must show it
        engine.create_customer(customer)
        assert engine.allow(customer, "api", 1)


def _flush(url: str) -> None:
    store = open_store(url)
    try:
        store.flush()  # type: ignore[attr-defined]
    finally:
        store.close()


def _view(url: str) -> tuple[set[str], int]:
    with Limitr.new(DOC, store=url) as engine:
        return {c["id"] for c in engine.customers()}, len(engine.store.pending())


@pytest.fixture
def pg_schema() -> Iterator[str]:
    backends.check_service("postgres")
    schema = "limitr_ns_" + uuid.uuid4().hex[:10]
    with psycopg.connect(backends.POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{backends.POSTGRES_URL}?options=-c%20search_path%3D{schema}"
    with psycopg.connect(backends.POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_postgres_prefixes_are_exact_namespaces(pg_schema: str) -> None:
    # Before: the engine without a prefix listed and delivered every prefix's rows, and prefix `t` listed and
    # flushed prefix `t:customer`'s (its keys start with `t:`).
    urls = {"none": pg_schema, "t": f"{pg_schema}&prefix=t", "t:customer": f"{pg_schema}&prefix=t:customer"}
    for name, url in urls.items():
        _fill(url, f"c-{name.replace(':', '-')}")
    assert _view(urls["none"]) == ({"c-none"}, 1)
    assert _view(urls["t"]) == ({"c-t"}, 1)
    assert _view(urls["t:customer"]) == ({"c-t-customer"}, 1)
    _flush(urls["t"])
    assert _view(urls["t"]) == (set(), 0)
    assert _view(urls["t:customer"]) == ({"c-t-customer"}, 1)
    assert _view(urls["none"]) == ({"c-none"}, 1)
    schema = pg_schema.rsplit("%3D", 1)[1]
    with psycopg.connect(backends.POSTGRES_URL) as conn:  # the option reached the server: the tables are there
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    assert tables == (2,)


def test_redis_prefixes_are_exact_namespaces() -> None:
    backends.check_service("redis")
    base = backends._namespace()
    urls = {"a": f"{backends.REDIS_URL}?prefix={base}", "b": f"{backends.REDIS_URL}?prefix={base}:customer"}
    try:
        for name, url in urls.items():
            _fill(url, f"c-{name}")
        assert _view(urls["a"]) == ({"c-a"}, 1)
        assert _view(urls["b"]) == ({"c-b"}, 1)
        _flush(urls["a"])
        assert _view(urls["a"]) == (set(), 0)
        assert _view(urls["b"]) == ({"c-b"}, 1)
    finally:
        for url in urls.values():
            _flush(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("{redis}?socket_timeout=bogus", "Invalid value for 'socket_timeout'"),
        ("{redis}?sockettimeout=1", "unknown store URL option `sockettimeout`"),
        ("{redis}?prefix=a{{b}}", "must be 1-64 characters"),
        ("{redis}?prefix=a&prefix=b", "given more than once"),
        ("{redis}?tag=x*", "must be 1-64 characters"),
        ("{postgres}?bogus=1", 'invalid URI query parameter: "bogus"'),
        ("{postgres}?connect_timeout=abc", "connect_timeout"),
        ("{postgres}?sslmode=nope", "sslmode"),
        ("{postgres}?prefix=a%2Fb", "must be 1-64 characters"),
        ("{postgres}?prefix=", "must be 1-64 characters"),
    ],
)
def test_malformed_or_unknown_url_options_are_refused_by_name(url: str, message: str) -> None:
    # Before: Redis dropped every option silently, and PostgreSQL blamed the network.
    full = url.format(redis=backends.REDIS_URL, postgres=backends.POSTGRES_URL)
    with pytest.raises(InvalidArgumentError, match=r"^[^\n]*$") as refused:
        open_store(full)
    assert message in str(refused.value)


def test_driver_options_reach_the_driver() -> None:
    backends.check_service("redis")
    store: Any = open_store(
        f"{backends.REDIS_URL}?socket_timeout=2.5&client_name=limitr-test&prefix={backends._namespace()}"
    )
    try:
        kwargs = store.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 2.5
        assert any(c.get("name") == "limitr-test" for c in store.client.client_list())
    finally:
        store.close()


def test_store_errors_while_listing_are_store_errors(tmp_path: Path) -> None:
    # A Redis server that goes away between calls: listing customers and reading the outbox raise StoreError,
    # not redis-py's exceptions (a real server process, stopped for the test).
    server = backends.RedisProcess(7191, tmp_path)
    server.wait_for(backends.RedisProcess.READY)
    url = f"redis://127.0.0.1:7191?prefix={backends._namespace()}&socket_timeout=2"
    try:
        engine = Limitr.new(DOC, store=url)
        engine.create_customer("u")
        server.stop()
        with pytest.raises(StoreError):
            engine.customers()
        with pytest.raises(StoreError):
            engine.deliver_pending()
        with pytest.raises(StoreError):
            engine.allow("u", "api", 1)
    finally:
        server.stop()
    with pytest.raises(StoreError, match="cannot reach"):
        open_store(url)


def test_a_terminated_postgres_backend_is_a_store_error_and_the_next_call_reconnects(pg_schema: str) -> None:
    # Before: customers() let psycopg.errors.AdminShutdown escape when the server ended the session.
    name = "limitr-test-" + uuid.uuid4().hex[:8]
    with Limitr.new(DOC, store=f"{pg_schema}&application_name={name}") as engine:
        engine.create_customer("u")
        with psycopg.connect(backends.POSTGRES_URL, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchall()
        assert (True,) in ended  # the pool's idle connection
        with pytest.raises(StoreError, match="scanning"):
            engine.customers()
        assert {c["id"] for c in engine.customers()} == {"u"}  # a new connection serves the next call
        assert engine.allow("u", "api", 1)


def open_connections(admin: psycopg.Connection[Any], name: str) -> int:
    row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def test_forty_short_lived_threads_leave_no_more_connections_than_the_pool_holds(pg_schema: str) -> None:
    # Before: one connection per thread, kept until close(): 40 threads left 40 sessions open on the server
    import threading

    name = "limitr-test-" + uuid.uuid4().hex[:8]
    with (
        Limitr.new(DOC, store=f"{pg_schema}&application_name={name}&pool_max_size=4") as engine,
        psycopg.connect(backends.POSTGRES_URL, autocommit=True) as admin,
    ):
        engine.create_customer("u")
        answers: list[bool] = []

        def call() -> None:
            answers.append(engine.allow("u", "gpu", 1, event=False))

        threads = [threading.Thread(target=call) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert answers == [True] * 40 and engine.value("u", "gpu") == 40
        assert 1 <= open_connections(admin, name) <= 4
    with psycopg.connect(backends.POSTGRES_URL, autocommit=True) as admin:
        # close() ends them all. A backend leaves pg_stat_activity just after its client does: ask again, each
        # time a round trip to the server, a bounded number of times (no sleeping, no engine time involved)
        for _ in range(5000):
            if open_connections(admin, name) == 0:
                break
        assert open_connections(admin, name) == 0


def test_a_bad_pool_size_is_refused_by_name(pg_schema: str) -> None:
    with pytest.raises(InvalidArgumentError, match="pool_max_size=0"):
        open_store(f"{pg_schema}&pool_max_size=0")


def test_a_one_record_commit_is_a_compare_and_set_that_takes_a_placeholder_row(pg_schema: str) -> None:
    # a commit of one record and nothing else is one UPDATE/INSERT … ON CONFLICT statement; a version-0 row
    # (a placeholder of the general path, or of 0.1) counts as absent, as it does for the general path
    from limitr_py.stores import Commit

    store = open_store(pg_schema)
    try:
        with psycopg.connect(pg_schema, autocommit=True) as conn:
            conn.execute("INSERT INTO limitr_records (key, version, value, ns) VALUES ('k', 0, NULL, '')")
        assert store.commit(Commit({"k": 0}, {"k": '"a"'})).ok
        assert not store.commit(Commit({"k": 0}, {"k": '"b"'})).ok  # taken now: version 1
        assert not store.commit(Commit({"k": 2}, {"k": '"b"'})).ok  # a version never read
        assert store.commit(Commit({"k": 1}, {"k": None})).ok  # a deletion keeps counting
        assert store.read(["k"])["k"].version == 2 and store.read(["k"])["k"].value is None
        assert store.commit(Commit({"fresh": 0}, {"fresh": '"c"'})).ok
        assert store.read(["fresh"])["fresh"].version == 1
    finally:
        store.close()


def test_a_commit_of_several_records_and_events_is_one_statement(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any commit is one round trip, and no placeholder row (version 0, no value) is left for the keys a commit
    expected absent. An allow with a listener: its commit (the record, confirmed from this process's copy, and its
    outbox entry) and the ack of the delivered event."""
    engine = Limitr.new(DOC, store=pg_schema)
    received: list[str] = []
    engine.on("meter-changed", lambda event: received.append(event.name))
    engine.create_customer("u")  # expects the customer's and its aliases' keys absent
    engine.allow("u", "gpu", 1)
    statements: list[str] = []
    real = psycopg.Connection.execute

    def counted(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query).split("(")[0].strip())
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    assert engine.allow("u", "gpu", 1)  # the customer record and an outbox entry: the general commit
    monkeypatch.undo()
    assert statements == ["SELECT limitr_commit_v1", "SELECT limitr_commit_v1"], statements
    assert received.count("meter-changed") == 2
    assert engine.store.pending() == []
    with psycopg.connect(pg_schema, autocommit=True) as conn:
        (placeholders,) = conn.execute(
            "SELECT count(*) FROM limitr_records WHERE version = 0 AND value IS NULL"
        ).fetchone()  # type: ignore[misc]
    assert placeholders == 0
    engine.close()


def test_the_one_statement_commit_is_all_or_nothing(pg_schema: str) -> None:
    from limitr_py.stores import Commit, OutboxEntry

    store = open_store(pg_schema)
    try:
        assert store.commit(Commit({"a": 0, "b": 0}, {"a": '"1"', "b": '"1"'})).ok
        # `b` moved since it was read (version 1, not 0): nothing of the commit happens, `a` included
        event = OutboxEntry("e1", "a", "{}", ("x",))
        assert not store.commit(Commit({"a": 1, "b": 0}, {"a": '"2"', "b": '"2"'}, (event,))).ok
        assert (store.read(["a"])["a"].version, store.read(["a"])["a"].value) == (1, '"1"')
        assert store.pending() == []
        # a key expected absent that nobody writes is checked, and leaves nothing behind
        assert store.commit(Commit({"a": 1, "ghost": 0}, {"a": '"3"'}, (event,))).ok
        assert store.read(["ghost"])["ghost"].version == 0 and [e.id for e in store.pending()] == ["e1"]
        with psycopg.connect(pg_schema, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM limitr_records WHERE key = 'ghost'").fetchone() == (0,)
        # acks: an entry owed to nobody more is deleted, one still owed is rewritten
        assert store.commit(Commit({}, {}, (OutboxEntry("e2", "a", "{}", ("x", "y")),), {"e1": ()})).ok
        assert store.commit(Commit({}, {}, (), {"e2": ("y",)})).ok
        assert [(e.id, e.consumers) for e in store.pending()] == [("e2", ("y",))]
    finally:
        store.close()


def test_a_steady_state_allow_on_sqlite_is_one_read_and_one_compare_and_set(tmp_path: Path) -> None:
    """As on PostgreSQL: a commit that checks and writes one record is one statement (no BEGIN IMMEDIATE, no
    SELECT of the version, no COMMIT), and a record that moved since it was read is a conflict the engine
    retries, never a lost update."""
    import sqlite3

    url = f"sqlite:///{tmp_path}/one.db"
    engine = Limitr.new(DOC, store=url)
    engine.create_customer("u")
    assert engine.allow("u", "gpu", 1)
    statements: list[str] = []
    conn: sqlite3.Connection = engine.store.inner._conn()  # type: ignore[attr-defined]  # this thread's
    conn.set_trace_callback(lambda sql: statements.append(" ".join(sql.split()[:2])))
    assert engine.allow("u", "gpu", 1)
    conn.set_trace_callback(None)
    assert statements == ["SELECT key,", "UPDATE limitr_records"], statements
    # another writer moves the record between this engine's read and its commit: the one-statement commit
    # refuses, and the engine's retry meters on top of the other writer's call (4: the 2 before, the other's
    # 1, and this one)
    other = Limitr.new(DOC, store=url)
    real = engine.store.inner.commit  # type: ignore[attr-defined]

    def racing(commit: Any) -> Any:
        engine.store.inner.commit = real  # type: ignore[attr-defined]  # once
        assert other.allow("u", "gpu", 1)
        return real(commit)

    engine.store.inner.commit = racing  # type: ignore[attr-defined]
    assert engine.allow("u", "gpu", 1)
    assert engine.value("u", "gpu") == 4 and other.value("u", "gpu") == 4
    assert engine.conflicts_retried == 1
    engine.close()
    other.close()
