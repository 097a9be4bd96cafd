"""`redis://host:port/db` and `redis+cluster://host:port`: many processes and servers on one source of truth.

Every commit is one Lua script (`lua/commit.lua`, loaded once, called by SHA) that checks the versions the engine
read and applies the writes and outbox changes together; a failed check answers with the current records of the
keys that moved, in the same round trip. With the engine deciding on its cached records, an `allow()` is one
network round trip in the steady state.

Cluster: the store is `grouped`. Every key carries its customer group as hash tag (`limitr:{<group>}:<key>`),
so all keys of a call — a customer, its refs, their shared caps, entities — share one slot, and different groups
spread over the masters. On one node everything carries the single tag `{limitr}` (`?tag=` to change it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.cluster
from redis.exceptions import NoScriptError, RedisError

from limitr_py.errors import InvalidArgumentError, StoreError
from limitr_py.stores import url_options
from limitr_py.stores.base import ABSENT, CONFLICT, OK, Commit, CommitResult, OutboxEntry, Versioned

SCRIPT = resources.files("limitr_py.stores").joinpath("lua/commit.lua").read_text(encoding="utf-8")


_OURS = frozenset({"prefix", "tag"})
_DRIVER_OPTIONS = frozenset(redis.connection.URL_QUERY_ARGUMENT_PARSERS) | {
    "client_name",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
}
"""Query options redis-py reads from a URL (it checks their values); anything else is refused by name."""


class RedisStore:
    encoded = True
    remote = True
    grouped = False

    def __init__(self, url: str) -> None:
        self.url = url
        self._shown = url_options.redact(url)  # messages never show a password
        mine, driver = url_options.split(url, _OURS)
        url_options.refuse_unknown(driver, _DRIVER_OPTIONS | _OURS, url)
        self.prefix = url_options.namespace(mine.get("prefix", "limitr"), "prefix", url)
        self.cluster = urlsplit(url).scheme == "redis+cluster"
        self.grouped = self.cluster
        # all records share one hash tag so that any call's keys (a user, its org, their shared caps) sit in one
        # slot; a deployment that shards by customer group sets `?tag=` per engine
        self.tag = url_options.namespace(mine.get("tag", "limitr"), "tag", url)
        client_url = url_options.with_query(url.replace("redis+cluster://", "redis://", 1), driver)
        try:
            if self.cluster:
                self.client: Any = redis.cluster.RedisCluster.from_url(client_url)
            else:
                self.client = redis.Redis.from_url(client_url)
        except ValueError as exc:  # redis-py's own check of an option's value
            raise InvalidArgumentError(f"{exc} (`{self._shown}`)") from None
        try:
            self.sha = self.client.script_load(SCRIPT)
        except RedisError as exc:
            raise StoreError(f"cannot reach `{self._shown}`: {exc}") from None

    def _key(self, key: str, group: str | None = None) -> str:
        return f"{self.prefix}:{{{group or self.tag}}}:{key}"

    def read(self, keys: list[str], group: str | None = None) -> dict[str, Versioned]:
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._key(key, group), "v", "d")
            rows = pipe.execute()
        except RedisError as exc:
            raise StoreError(f"reading `{self._shown}` failed: {exc}") from None
        out = {}
        for key, (version, data) in zip(keys, rows, strict=True):
            out[key] = ABSENT if version is None else Versioned(int(version), None if data is None else data.decode())
        return out

    def commit(self, commit: Commit) -> CommitResult:
        keys = list(dict.fromkeys([*commit.expected, *commit.writes]))
        head = [str(len(keys)), str(len(commit.events)), str(len(commit.acks))]
        written: list[Any] = []
        for key in keys:
            value = commit.writes.get(key, ...)
            op = "." if value is ... else ("D" if value is None else "W")
            ttl = "-"
            when = commit.expires.get(key)
            if when is not None and commit.now is not None:
                ttl = str(max(1, (when - commit.now) // timedelta(milliseconds=1)))
            head += [str(commit.expected[key]) if key in commit.expected else "-", op, ttl]
            if op == "W":
                written.append(value)
        args: list[Any] = [" ".join(head), *written]
        for entry in commit.events:
            args += [entry.id, entry.group, entry.body, json.dumps(entry.consumers)]
        for event_id, owed in commit.acks.items():
            args += [event_id, json.dumps(owed) if owed else ""]
        group = commit.group if self.grouped else None
        names = [self._key(k, group) for k in keys]
        if commit.events or commit.acks:  # the script touches the outbox only for these
            names += [self._key("outbox", group), self._key("outbox:order", group)]
        try:
            try:
                result = self.client.evalsha(self.sha, len(names), *names, *args)
            except NoScriptError:  # a restarted server forgot the script
                self.sha = self.client.script_load(SCRIPT)
                result = self.client.evalsha(self.sha, len(names), *names, *args)
        except RedisError as exc:
            raise StoreError(f"commit to `{self._shown}` failed: {exc}") from None
        if int(result[0]) == 1:
            return OK
        fresh = {}
        by_name = {self._key(k, group): k for k in keys}
        for i in range(1, len(result), 3):
            name = result[i].decode() if isinstance(result[i], bytes) else result[i]
            version, data = int(result[i + 1]), result[i + 2]
            fresh[by_name[name]] = Versioned(version, data.decode() if data else None) if version else ABSENT
        return CommitResult(False, fresh) if fresh else CONFLICT

    def _names(self, pattern: str) -> list[str]:
        """Every key name of this store matching `prefix:{<any group>}:<pattern>` (all masters of a cluster)."""
        tag = "*" if self.grouped else self.tag
        try:
            return sorted(
                {n.decode() for n in self.client.scan_iter(match=f"{self.prefix}:{{{tag}}}:{pattern}", count=1000)}
            )
        except RedisError as exc:
            raise StoreError(f"scanning `{self._shown}` failed: {exc}") from None

    def scan(self, prefix: str) -> Iterator[tuple[str, str]]:
        for name in self._names(prefix + "*"):
            try:
                data = self.client.hget(name, "d")
            except RedisError as exc:
                raise StoreError(f"scanning `{self._shown}` failed: {exc}") from None
            if data is not None:
                yield name.split("}:", 1)[1], data.decode()

    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        out: list[OutboxEntry] = []
        # one outbox per group: found by a scan on a cluster; otherwise there is one, under the store's tag (a
        # dispatcher asks every second: no scan of the whole keyspace for it)
        orders = self._names("outbox:order") if self.grouped else [self._key("outbox:order")]
        for order in orders:
            outbox = order[: -len(":order")]
            try:
                ids = self.client.lrange(order, 0, limit - 1)
                entries = self.client.hmget(outbox, ids) if ids else []
            except RedisError as exc:
                raise StoreError(f"reading the outbox of `{self._shown}` failed: {exc}") from None
            for event_id, raw in zip(ids, entries, strict=True):
                if raw is not None:
                    group, body, consumers = json.loads(raw)
                    out.append(OutboxEntry(event_id.decode(), group, body, tuple(json.loads(consumers))))
        return out[:limit]

    def flush(self) -> None:
        """Delete every key of this store's prefix (tests)."""
        try:
            for name in self._names("*"):
                self.client.delete(name)
        except RedisError as exc:
            raise StoreError(f"flushing `{self._shown}` failed: {exc}") from None

    def close(self) -> None:
        self.client.close()
