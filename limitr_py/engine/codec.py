"""Records and events ↔ JSON text, for stores that keep text (SQLite, Redis, PostgreSQL).

The key's kind (engine/keys.py) says what a record is. Decoding is memoized per (key, version): a record that has
not changed is decoded once, and the decoded object is shared (the engine never changes records it read).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py import json_text
from limitr_py.engine import keys
from limitr_py.engine.records import Decoder, customer_from, customer_record, encode
from limitr_py.engine.state import EstimateState
from limitr_py.engine.values import Event
from limitr_py.errors import CorruptRecordError, StoreError
from limitr_py.stores.base import Commit, CommitResult, OutboxEntry, Store, Versioned

_CACHE_SIZE = 50_000


def dumps(key: str, value: Any) -> str:
    if keys.kind_of(key) is keys.CUSTOMER:
        return json_text.dumps(customer_record(value, shared=True))
    return json_text.dumps(encode(value))


def loads(key: str, text: str) -> Any:
    try:
        raw = json.loads(text)
        kind = keys.kind_of(key)
        if kind is keys.CUSTOMER:
            return customer_from(raw)
        if kind is keys.ESTIMATES:
            d = Decoder(f"`{key}`")
            return {segment: d.obj(EstimateState, e, segment) for segment, e in raw.items()}
        if kind is not None and kind.one_shot:
            d = Decoder(f"`{key}`")
            return {**raw, **{k: d.value("datetime", raw[k], k) for k in ("at", "until") if k in raw}}
        return raw
    except Exception as exc:
        raise CorruptRecordError(key, str(exc)) from None


def _tagged(value: Any) -> Any:
    """Event payloads keep their types through the outbox: Decimal and datetime are tagged."""
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): _tagged(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(v) for v in value]
    return value


def _untagged(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$d"}:
            return Decimal(value["$d"])
        if set(value) == {"$t"}:
            return datetime.fromisoformat(value["$t"])
        return {k: _untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    return value


def dump_event(event: Event) -> str:
    return json.dumps(
        _tagged({"name": event.name, "payload": event.payload, "at": event.at, "id": event.id}), separators=(",", ":")
    )


def load_event(text: str) -> Event:
    try:
        raw = _untagged(json.loads(text))
        return Event(raw["name"], raw["payload"], raw["at"], raw["id"])
    except Exception as exc:
        raise StoreError(f"corrupt outbox event: {exc}") from None


class EncodedStore:
    """A text store seen as a store of engine records."""

    encoded = False

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.remote = inner.remote
        self.grouped = getattr(inner, "grouped", False)
        self._decoded: OrderedDict[tuple[str, int], tuple[str, Any]] = OrderedDict()

    def _decode(self, key: str, record: Versioned) -> Versioned:
        if record.value is None:
            return record
        memo = (key, record.version)
        seen = self._decoded.get(memo)
        # the text is compared too: a key that expired (or was purged) starts counting versions again, and its
        # version 1 then is not the version 1 that was decoded before
        if seen is not None and seen[0] == record.value:
            return Versioned(record.version, seen[1])
        value = loads(key, record.value)
        self._remember(memo, record.value, value)
        return Versioned(record.version, value)

    def _remember(self, memo: tuple[str, int], text: str, value: Any) -> None:
        self._decoded[memo] = (text, value)
        if len(self._decoded) > _CACHE_SIZE:
            try:
                self._decoded.popitem(last=False)
            except KeyError:  # another thread emptied it first
                pass

    def read(self, keys: list[str], group: str | None = None) -> dict[str, Versioned]:
        return {key: self._decode(key, record) for key, record in self.inner.read(keys, group).items()}

    def versions(self, keys: list[str], group: str | None = None) -> dict[str, int]:
        """The current version of each key, without decoding its record (to replace a corrupt one)."""
        return {key: record.version for key, record in self.inner.read(keys, group).items()}

    def commit(self, commit: Commit) -> CommitResult:
        writes = {key: None if value is None else dumps(key, value) for key, value in commit.writes.items()}
        result = self.inner.commit(
            Commit(commit.expected, writes, commit.events, commit.acks, commit.expires, commit.now, commit.group)
        )
        if result.ok:
            # what was written is what the next read returns, at the version after the one checked: remembered
            # as decoded, so a store without a process cache (SQLite) does not decode its own write again
            for key, text in writes.items():
                if text is not None and key in commit.expected:
                    self._remember((key, commit.expected[key] + 1), text, commit.writes[key])
            return result
        if not result.fresh:
            return result
        return CommitResult(False, {key: self._decode(key, record) for key, record in result.fresh.items()})

    def scan(self, prefix: str) -> Iterator[tuple[str, Any]]:
        for key, text in self.inner.scan(prefix):
            yield key, loads(key, text)

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        return self.inner.pending(limit)

    def close(self) -> None:
        self.inner.close()
