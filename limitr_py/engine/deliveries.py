"""Webhook deliveries on the store: claim what is due, record how an attempt went, list, re-send dead letters.

The transitions are engine/webhooks.py's; this module reads and commits them. Work is found in the outbox
(entries owed to `webhook:<endpoint>`, oldest first): for each (endpoint, customer group) only the oldest entry
is considered, so one customer's messages reach an endpoint in the order they were committed, and a message
that keeps failing holds back that customer's later ones (not other customers') until it is delivered or
dead-lettered. Every record is read and written in its customer's group, with its outbox entry.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from limitr_py.clock import Clock
from limitr_py.engine import codec, webhooks
from limitr_py.engine.events import EventBus
from limitr_py.engine.webhooks import Endpoint, WebhookDelivery
from limitr_py.errors import InvalidArgumentError
from limitr_py.stores.base import Commit, OutboxEntry, Store, Versioned

FINISH_ATTEMPTS = 20
"""Conflicts a finish retries: only a retry request or a takeover after the lease can race it."""


class Deliveries:
    def __init__(self, store: Store, clock: Clock, bus: EventBus) -> None:
        self.store, self.clock, self.bus = store, clock, bus
        self.grouped = bool(getattr(store, "grouped", False))

    def _group(self, group: str) -> str | None:
        return group if self.grouped else None

    def _heads(self, scan: int) -> list[tuple[OutboxEntry, str]]:
        """The oldest webhook entry of each (endpoint, customer group), with its endpoint."""
        seen: set[tuple[str, str]] = set()
        heads = []
        for entry in self.store.pending(scan):
            endpoint = webhooks.endpoint_of(entry.consumers)
            if endpoint is None or (endpoint, entry.group) in seen:
                continue
            seen.add((endpoint, entry.group))
            heads.append((entry, endpoint))
        return heads

    def _records(self, entries: Iterable[OutboxEntry]) -> dict[str, Versioned]:
        """The delivery record of each entry, one read per customer group (one in all on a store that does not
        shard)."""
        by_group: dict[str | None, list[str]] = {}
        for entry in entries:
            by_group.setdefault(self._group(entry.group), []).append(webhooks.record_key(entry.id))
        found: dict[str, Versioned] = {}
        for group, wanted in by_group.items():
            found.update(self.store.read(wanted, group))
        return found

    def claim(self, limit: int, scan: int) -> list[WebhookDelivery]:
        """Claim up to `limit` due deliveries to the endpoints registered here; each must then be finished."""
        sinks = self.bus.sinks
        heads = [(entry, name) for entry, name in self._heads(scan) if name in sinks]
        records = self._records(entry for entry, _ in heads)
        now = self.clock.now()
        out: list[WebhookDelivery] = []
        for entry, name in heads:
            if len(out) >= limit:
                break
            key = webhooks.record_key(entry.id)
            stored = records[key]
            event = codec.load_event(entry.body)
            record = stored.value or webhooks.new_record(entry.id, name, entry.body, event, entry.group, now)
            if record["state"] in ("delivered", "dead"):  # its entry outlived it: end the entry
                self.store.commit(Commit({}, {}, acks={entry.id: ()}, group=self._group(entry.group)))
                continue
            if not webhooks.claimable(record, now):
                continue
            token = secrets.token_hex(8)
            new = webhooks.claimed(record, sinks[name], token, now)
            commit = Commit({key: stored.version}, {key: new}, now=now, group=self._group(entry.group))
            if self.store.commit(commit).ok:  # else another process claimed it first
                out.append(webhooks.view(new, event, token))
        return out

    def finish(self, delivery: WebhookDelivery, status: int | None, error: str | None) -> WebhookDelivery | None:
        """Record how the attempt of a claimed delivery went; None when the claim was lost (its lease ran out
        and another process took it over), in which case this outcome is not recorded."""
        endpoint = self.bus.sinks.get(delivery.endpoint) or Endpoint(delivery.endpoint, frozenset({"*"}))
        key = webhooks.record_key(delivery.id)
        for _ in range(FINISH_ATTEMPTS):
            record, version, group = self._find(delivery.id)
            if record is None or record.get("claim") != delivery.claim:
                return None
            now = self.clock.now()
            new, keep = webhooks.finished(record, endpoint, status, error, now)
            done = new["state"] in ("delivered", "dead")
            commit = Commit(
                {key: version},
                {key: new},
                acks={delivery.id: ()} if done else {},
                expires={key: now + keep} if keep is not None else {},
                now=now,
                group=group,
            )
            if self.store.commit(commit).ok:
                return webhooks.view(new, delivery.event)
        return None

    def _find(self, delivery: str) -> tuple[dict[str, Any] | None, int, str | None]:
        """A delivery record by id: (value, version, group to commit in). On a store that shards, the group is
        not known from the id: the record is found by a scan (an operator's request, not the hot path)."""
        key = webhooks.record_key(delivery)
        if not self.grouped:
            stored = self.store.read([key])[key]
            return stored.value, stored.version, None
        for found_key, value in self.store.scan(key):
            if found_key == key:
                group = value["group"]
                stored = self.store.read([key], group)[key]
                return stored.value, stored.version, group
        return None, 0, None

    def listing(self, state: str | None, endpoint: str | None, limit: int) -> list[WebhookDelivery]:
        """Deliveries newest event first: every record, and outbox entries no attempt has been made for yet."""
        now = self.clock.now()
        found: dict[str, WebhookDelivery] = {}
        for key, record in self.store.scan(webhooks.RECORD_PREFIX):
            if key[len(webhooks.RECORD_PREFIX) :] == record.get("id"):
                found[record["id"]] = webhooks.view(record, codec.load_event(record["event"]))
        for entry in self.store.pending(100_000):
            name = webhooks.endpoint_of(entry.consumers)
            if name is not None and entry.id not in found:
                found[entry.id] = _unattempted(entry, name, now)
        chosen = [
            d
            for d in found.values()
            if (state is None or d.state == state) and (endpoint is None or d.endpoint == endpoint)
        ]
        chosen.sort(key=lambda d: (d.event.at, d.id), reverse=True)
        return chosen[:limit]

    def get(self, delivery: str) -> WebhookDelivery | None:
        record, _, _ = self._find(delivery)
        if record is not None:
            return webhooks.view(record, codec.load_event(record["event"]))
        for entry in self.store.pending(100_000):
            name = webhooks.endpoint_of(entry.consumers)
            if name is not None and entry.id == delivery:
                return _unattempted(entry, name, self.clock.now())
        return None

    def retry(self, delivery: str) -> WebhookDelivery | None:
        """Send a dead letter again (its message goes back to the outbox, attempts start over); None for an
        unknown id. Refused for a delivery that is not dead: it is delivered, or still being tried."""
        key = webhooks.record_key(delivery)
        for _ in range(FINISH_ATTEMPTS):
            record, version, group = self._find(delivery)
            if record is None:
                return None
            if record["state"] != "dead":
                raise InvalidArgumentError(
                    f"delivery `{delivery}` is {record['state']}: only a dead letter is sent again"
                )
            now = self.clock.now()
            new = webhooks.requeued(record, now)
            entry = OutboxEntry(delivery, record["group"], record["event"], (webhooks.consumer(record["endpoint"]),))
            commit = Commit({key: version}, {key: new}, (entry,), now=now, group=group)
            if self.store.commit(commit).ok:
                self.bus.background_work.set()
                return webhooks.view(new, codec.load_event(record["event"]))
        return None


def _unattempted(entry: OutboxEntry, endpoint: str, now: datetime) -> WebhookDelivery:
    """How an outbox entry no attempt was made for yet is shown: a pending delivery, due now."""
    event = codec.load_event(entry.body)
    return webhooks.view(webhooks.new_record(entry.id, endpoint, entry.body, event, entry.group, now), event)
