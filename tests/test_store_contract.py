"""The Store protocol itself (limitr_py/stores/base.py), tested the same way on every backend of tests/backends.py.

The engine relies on exactly these rules; a new backend is one new row in the table and must pass all of them:
version 0 for absent keys, create-only commits, all-or-nothing commits, deleted keys that keep counting versions,
unchecked writes, expiry, the outbox (events atomic with their commit, partial and full acknowledgements, oldest
first), prefix scans, and customer groups on stores that shard by them. Values are text, as the engine hands
them to durable stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from limitr_py.stores import ABSENT, Commit, OutboxEntry, Store, open_store
from tests.engine_helpers import Engines

NOW = datetime(2026, 3, 15, 14, 30, tzinfo=UTC)


@pytest.fixture
def store(engines: Engines) -> Iterator[Any]:
    """A raw store of one backend, in a namespace of its own; closed, then emptied by `engines`."""
    opened = open_store(engines.url())
    yield opened
    opened.close()


def commit(store: Store, expected: dict[str, int], writes: dict[str, Any], **more: Any) -> bool:
    return store.commit(Commit(expected, writes, **more)).ok


def test_it_implements_the_protocol(store: Any) -> None:
    assert isinstance(store, Store)
    assert isinstance(store.url, str) and isinstance(store.encoded, bool) and isinstance(store.remote, bool)


def test_an_absent_key_reads_version_0(store: Any) -> None:
    assert store.read(["customer:nobody", "alias:nobody"]) == {"customer:nobody": ABSENT, "alias:nobody": ABSENT}


def test_expecting_version_0_creates_once(store: Any) -> None:
    assert commit(store, {"customer:a": 0}, {"customer:a": "one"})
    created = store.read(["customer:a"])["customer:a"]
    assert (created.version, created.value) == (1, "one")
    assert not commit(store, {"customer:a": 0}, {"customer:a": "two"})  # it exists: create-only fails
    assert commit(store, {"customer:a": 1}, {"customer:a": "two"})
    assert store.read(["customer:a"])["customer:a"].version == 2
    assert store.read(["customer:a"])["customer:a"].value == "two"


def test_a_commit_is_all_or_nothing(store: Any) -> None:
    assert commit(store, {"customer:a": 0, "customer:b": 0}, {"customer:a": "a1", "customer:b": "b1"})
    assert commit(store, {"customer:b": 1}, {"customer:b": "b2"})  # b moves on
    result = store.commit(Commit({"customer:a": 1, "customer:b": 1}, {"customer:a": "a2", "customer:b": "b3"}))
    assert not result.ok
    got = store.read(["customer:a", "customer:b"])
    assert (got["customer:a"].version, got["customer:a"].value) == (1, "a1")  # nothing of the failed commit
    assert (got["customer:b"].version, got["customer:b"].value) == (2, "b2")
    for key, record in result.fresh.items():  # what a store sends back with a conflict is current
        assert store.read([key])[key] == record


def test_a_deleted_key_keeps_counting_versions(store: Any) -> None:
    assert commit(store, {"customer:a": 0}, {"customer:a": "one"})
    assert commit(store, {"customer:a": 1}, {"customer:a": None})
    deleted = store.read(["customer:a"])["customer:a"]
    assert deleted.value is None and deleted.version == 2
    assert not commit(store, {"customer:a": 0}, {"customer:a": "again"})  # a stale reader's "absent" fails
    assert not commit(store, {"customer:a": 1}, {"customer:a": "again"})
    assert commit(store, {"customer:a": 2}, {"customer:a": "again"})
    assert store.read(["customer:a"])["customer:a"].version == 3
    assert [k for k, _ in store.scan("customer:")] == ["customer:a"]


def test_writes_without_an_expected_version_are_unchecked(store: Any) -> None:
    assert commit(store, {}, {"locator:a": "g1"})
    assert commit(store, {}, {"locator:a": "g2"})
    record = store.read(["locator:a"])["locator:a"]
    assert record.value == "g2" and record.version == 2


def test_scan_lists_live_records_by_exact_prefix(store: Any) -> None:
    assert commit(store, {}, {"customer:a": "a", "customer:b": "b", "customerx:c": "c", "alias:a": "a"})
    assert commit(store, {"customer:b": 1}, {"customer:b": None})
    assert sorted(store.scan("customer:")) == [("customer:a", "a")]


def test_a_record_with_an_expiry_lives_until_it_and_goes_after(store: Any) -> None:
    key, keep = "idempotency:a:k", timedelta(days=1)
    assert commit(store, {key: 0}, {key: "answer"}, expires={key: NOW + keep}, now=NOW)
    assert store.read([key])[key].value == "answer"
    if type(store).__name__ == "RedisStore":
        # Redis drops the key by its own clock (PEXPIRE): what the store owes is the time to live it set, which
        # the server reports without anyone waiting for it to pass
        ttl_ms = store.client.pttl(store._key(key))
        assert 0 < ttl_ms <= keep // timedelta(milliseconds=1)
        return
    # a later commit whose engine time is past the expiry drops it (the SQL stores purge at most once a minute)
    assert commit(store, {}, {"customer:z": "z"}, now=NOW + keep + timedelta(minutes=2))
    assert store.read([key])[key] == ABSENT


def test_a_record_written_again_keeps_only_its_latest_expiry(store: Any) -> None:
    # a key first written to expire soon, then rewritten to live a day (and another rewritten to live for ever),
    # must outlast its first expiry: the expiry in force is the last write's, not the earliest one ever set
    soon, later = NOW + timedelta(minutes=1), NOW + timedelta(days=1)
    assert commit(store, {"a": 0, "b": 0}, {"a": "1", "b": "1"}, expires={"a": soon, "b": soon}, now=NOW)
    assert commit(store, {"a": 1, "b": 1}, {"a": "2", "b": "2"}, expires={"a": later}, now=NOW)
    if type(store).__name__ == "RedisStore":
        assert store.client.pttl(store._key("a")) > timedelta(hours=23) // timedelta(milliseconds=1)
        assert store.client.pttl(store._key("b")) == -1  # no time to live: kept until deleted
        return
    assert commit(store, {}, {"customer:z": "z"}, now=soon + timedelta(minutes=2))
    records = store.read(["a", "b"])
    assert (records["a"].value, records["b"].value) == ("2", "2")


def test_the_outbox_holds_events_until_every_consumer_acknowledged(store: Any) -> None:
    first = OutboxEntry("e1", "customer:a", '{"n": 1}', ("meter-changed", "*"))
    second = OutboxEntry("e2", "customer:a", '{"n": 2}', ("meter-changed",))
    assert commit(store, {"customer:a": 0}, {"customer:a": "a"}, events=(first,))
    assert commit(store, {"customer:a": 1}, {"customer:a": "a2"}, events=(second,))
    assert [(e.id, e.consumers) for e in store.pending()] == [
        ("e1", ("meter-changed", "*")),
        ("e2", ("meter-changed",)),
    ]
    assert commit(store, {}, {}, acks={"e1": ("*",)})  # one consumer done: the other is still owed
    assert [(e.id, e.consumers) for e in store.pending()] == [("e1", ("*",)), ("e2", ("meter-changed",))]
    assert commit(store, {}, {}, acks={"e1": (), "e2": ()})
    assert store.pending() == []


def test_events_of_a_failed_commit_are_never_written(store: Any) -> None:
    assert commit(store, {"customer:a": 0}, {"customer:a": "a"})
    lost = OutboxEntry("e-lost", "customer:a", "{}", ("*",))
    assert not commit(store, {"customer:a": 0}, {"customer:a": "b"}, events=(lost,))
    assert store.pending() == []


def test_pending_is_oldest_first_and_limited(store: Any) -> None:
    for n in range(5):
        assert commit(store, {}, {}, events=(OutboxEntry(f"e{n}", "customer:a", "{}", ("*",)),))
    assert [e.id for e in store.pending(limit=3)] == ["e0", "e1", "e2"]


def test_a_group_keeps_its_keys_together(store: Any) -> None:
    # On a store that shards by customer group (Redis Cluster) every key of a commit must share its slot: two
    # groups are two slots, each commit lands on one, and reads name the group. Elsewhere groups are ignored.
    for group in ("org-1", "org-2"):
        keys = [f"customer:{group}-a", f"customer:{group}-b", f"idempotency:{group}-a:k"]
        assert store.commit(Commit(dict.fromkeys(keys, 0), dict.fromkeys(keys, group), group=group)).ok
        read = store.read(keys, group) if getattr(store, "grouped", False) else store.read(keys)
        assert [r.value for r in read.values()] == [group] * 3
