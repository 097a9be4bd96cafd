"""The one read → decide → commit runner: snapshots and the ref walk, the record cache, one retry loop with
backoff (giving up always raises `ConcurrentUpdateError`), idempotency, the outbox and customer-group routing.

An attempt function gets an `Attempt` (the snapshot, the versions it saw) and the time, decides with pure code,
and says what to write; the runner commits it against those versions and tries again on a conflict. Only events
of the attempt that committed are published.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from limitr_py.clock import Clock
from limitr_py.engine import codec, history, keys, webhooks
from limitr_py.engine.cache import RecordCache
from limitr_py.engine.decide import Snapshot
from limitr_py.engine.events import EventBus, background
from limitr_py.engine.state import CustomerState
from limitr_py.engine.values import Event
from limitr_py.errors import ConcurrentUpdateError, IdempotencyConflictError, InvalidArgumentError, StoreError
from limitr_py.event_names import EventName
from limitr_py.stores.base import ABSENT, Commit, CommitResult, OutboxEntry, Store, Versioned

T = TypeVar("T")
RawEvent = tuple[EventName, dict[str, Any]]

MAX_ATTEMPTS = 200
"""Version conflicts one call retries before giving up with ConcurrentUpdateError."""
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.0002, 0.05
"""After the second conflict in a row a call waits a random time up to base × 2^attempt (at most the cap)."""


class Attempt:
    """One read-decide-commit attempt: the snapshot, the versions it saw, and what it wants to write."""

    def __init__(
        self, snap: Snapshot, versions: dict[str, int], extras: dict[str, Any], group: str | None = None
    ) -> None:
        self.snap = snap
        self.group = group  # the customer group the attempt reads and commits in (stores that shard)
        self.versions = versions
        self.extras = extras  # values of the extra keys read with the snapshot
        self.writes: dict[str, Any] = {}
        self.expires: dict[str, datetime] = {}  # when the store may forget a written key
        self.events: list[RawEvent] = []

    def put_customers(self, states: Mapping[str, CustomerState | None]) -> None:
        for ident, state in states.items():
            self.writes[keys.customer(ident)] = state

    def put_aliases(self, aliases: Mapping[str, str | None]) -> None:
        for alt, ident in aliases.items():
            self.writes[keys.alias(alt)] = ident


class Runner:
    """What every state-changing call goes through; shared by the engine's threads."""

    def __init__(self, store: Store, clock: Clock, bus: EventBus) -> None:
        self.durable = store.encoded  # text stores: records are encoded, events go through the outbox
        self.store: Store = codec.EncodedStore(store) if store.encoded else store
        self.cache = RecordCache(skip=keys.ONE_SHOT_PREFIXES) if store.remote else None
        self.grouped = bool(getattr(store, "grouped", False))
        self.groups: dict[str, str] = {}  # id or alt id → customer group (sharded stores only)
        self.clock = clock
        self.bus = bus
        self.retried = 0  # attempts made again after a conflict (a metric: `Limitr.conflicts_retried`)
        self._retried_lock = threading.Lock()
        # policy-wide estimates are shared by every customer: on a sharded store they have a group of their own
        self.estimates_group = keys.ESTIMATES_GROUP if self.grouped else None

    def attempts(self, what: str) -> Iterator[int]:
        """The one retry loop: attempt numbers, with a jittered backoff from the third on (so racers stop
        colliding in step); raises ConcurrentUpdateError when `what` conflicted MAX_ATTEMPTS times."""
        for number in range(MAX_ATTEMPTS):
            if number:
                with self._retried_lock:
                    self.retried += 1
            if number >= 3:
                time.sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (number - 1))))
            yield number
        raise ConcurrentUpdateError(f"gave up on {what} after {MAX_ATTEMPTS} conflicting attempts")

    def group_for(self, ident: str) -> str | None:
        """The group whose slot holds `ident`'s records: a customer's group is the group of its first ref (its
        org), else its own id; `locator:<id>` records it, in the slot of the id itself, cached per process."""
        if not self.grouped:
            return None
        group = self.groups.get(ident)
        if group is None:  # a locator lives in the slot of the id it locates
            found = self.store.read([keys.locator(ident)], ident)[keys.locator(ident)].value
            group = self.groups[ident] = found if isinstance(found, str) else ident
        return group

    def locate_in(self, ident: str, group: str) -> bool:
        """Record that `ident` (an id or alt id) lives in `group` (its own commit, in the slot of `ident`); False
        when it already lives in another group (an alt id taken by a customer elsewhere)."""
        if not self.grouped or self.group_for(ident) == group:
            return True
        if self.group_for(ident) != ident:
            return False
        key = keys.locator(ident)
        for _ in self.attempts(f"locating `{ident}`"):
            record = self.store.read([key], ident)[key]
            if record.value is not None and record.value != group:
                return False
            if self.store.commit(Commit({key: record.version}, {key: group}, group=ident)).ok:
                break
        self.groups[ident] = group
        return True

    def group_of_refs(self, refs: tuple[str, ...]) -> str | None:
        """The group a customer with these refs belongs to; on a sharded store all refs must share one."""
        if not self.grouped or not refs:
            return None
        groups = {self.group_for(ref) for ref in refs}
        if len(groups) > 1:
            raise InvalidArgumentError(
                f"on a sharded store a customer's refs must belong to one group; `{'`, `'.join(refs)}` do not"
            )
        return groups.pop()

    def place(self, ident: str, refs: tuple[str, ...], names: Iterable[str] = ()) -> None:
        """On a sharded store, the group of a customer created or restored with `refs` (its org's) and its id and
        alt ids `names` located there; refused when refs would move it, or a name lives in another group."""
        if not self.grouped:
            return
        group = self.group_of_refs(refs) or self.group_for(ident) or ident
        if refs and self.group_for(ident) not in (ident, group):
            raise InvalidArgumentError(
                f"`{ident}` already belongs to another group; on a sharded store its refs cannot move it"
            )
        for name in (ident, *names):
            if not self.locate_in(name, group):
                raise InvalidArgumentError(f"alt id `{name}` already belongs to a customer of another group")

    def join(self, name: str, ident: str) -> bool:
        """Locate `name` (an alt id, an entity) in the group of customer `ident`; False when it lives elsewhere."""
        return not self.grouped or self.locate_in(name, self.group_for(ident) or ident)

    def check_refs(self, ident: str, refs: tuple[str, ...]) -> None:
        """New refs of an existing customer: on a sharded store they must be in its group."""
        if self.grouped and refs and self.group_of_refs(refs) != self.group_for(ident):
            raise InvalidArgumentError(f"on a sharded store `{ident}` cannot ref customers of another group")

    def members(self, ident: str, ids: Iterable[str]) -> list[CustomerState]:
        """The records of customer `ident`'s entities `ids` (they live in its group); deleted ones left out."""
        read = self.store.read([keys.customer(e) for e in ids], self.group_for(ident))
        return [record.value for record in read.values() if record.value is not None]

    def read_shared(self, key: str) -> Any:
        """A record no customer owns (the policy-wide estimates), from its own group."""
        return self.store.read([key], self.estimates_group)[key].value

    def update_shared(self, key: str, change: Callable[[Any], Any], what: str) -> None:
        """Read, change and commit a record no customer owns in a small commit of its own, so that sharing it
        never makes customers' calls conflict; the one retry loop, like every write."""
        group = self.estimates_group
        for _ in self.attempts(what):
            record = self.store.read([key], group)[key]
            if self.store.commit(Commit({key: record.version}, {key: change(record.value)}, group=group)).ok:
                return

    def read(self, wanted: list[str], cached: bool, group: str | None) -> tuple[dict[str, Versioned], bool]:
        """Records from the store, and whether any came from this process's cache instead.

        On a remote store a decision may start from cached copies (a commit's version check catches any that
        moved; an answer that writes nothing is confirmed by `confirm`). Call-scoped keys (idempotency, settled
        holds) are assumed absent rather than read: the commit expects them absent, and a conflict brings them
        back."""
        cache = self.cache
        if cache is None or not cached:
            got = self.store.read(wanted, group)
            if cache is not None:
                cache.put(got.items())
            return got, False
        out: dict[str, Versioned] = {}
        missing = []
        for key in wanted:
            held = cache.get(key)
            if held is not None:
                out[key] = held
            elif key.startswith(keys.ONE_SHOT_PREFIXES):
                out[key] = ABSENT
            else:
                missing.append(key)
        if missing:
            got = self.store.read(missing, group)
            cache.put(got.items())
            out.update(got)
        return out, len(missing) < len(wanted)

    def remember(self, commit: Commit, result: CommitResult, fresh: dict[str, Versioned]) -> None:
        """Keep the cache in step with a commit: written keys at their new versions, moved keys refreshed; the
        records a conflict sent back go to `fresh` too, for the call's next attempt (one-shot keys included)."""
        cache = self.cache
        if cache is None:
            return
        if result.ok:
            cache.drop(key for key in commit.writes if key not in commit.expected)
            cache.put(
                (key, Versioned(commit.expected[key] + 1, value))
                for key, value in commit.writes.items()
                if key in commit.expected
            )
            return
        cache.drop(commit.expected)
        cache.put(result.fresh.items())
        fresh.update(result.fresh)

    def confirm(self, versions: Mapping[str, int], fresh: dict[str, Versioned], group: str | None) -> bool:
        """Whether every record an answer rests on is still at the version it was read at (one round trip).
        What moved goes to the cache and to `fresh`, so the call's next attempt decides on it."""
        got = self.store.read(list(versions), group)
        moved = {key: record for key, record in got.items() if record.version != versions[key]}
        if self.cache is not None:
            self.cache.put(moved.items())
        fresh.update(moved)
        return not moved

    def snapshot(
        self,
        ident: str,
        extra: Iterable[str] = (),
        *,
        cached: bool = False,
        fresh: dict[str, Versioned] | None = None,
        group: str | None = None,
        include: Iterable[str] = (),
    ) -> tuple[Snapshot, dict[str, int], dict[str, Any], bool]:
        """The customer `ident` (by id or alt id) and everyone reachable through its refs, with versions.

        `extra` keys are read in the first round trip too; their values come back in the third element. The
        fourth says whether any record came from the cache (so an answer resting on it needs confirming).
        `fresh` holds records a conflict of this call just sent back: they win over the cache and assumptions.
        `group` is where the records live on a sharded store (default: `ident`'s group). `include` names more
        customers to read with their refs (a customer being created names its refs: they resolve its plan).
        """
        if group is None:
            group = self.group_for(ident)
        first = [keys.customer(ident), keys.alias(ident), *extra]
        read, from_cache = self.read(first, cached, group)
        if fresh:
            read.update({k: fresh.pop(k) for k in first if k in fresh})
        versions = {k: v.version for k, v in read.items()}
        extras = {k: read[k].value for k in extra}
        customers: dict[str, CustomerState] = {}
        aliases: dict[str, str] = {}
        record = read[first[0]]
        pending: list[str] = []
        if record.value is not None:
            customers[ident] = record.value
            pending.extend(record.value.refs)
            # found by its id, the customer does not rest on `alias:<id>`: the commit need not check it (an alt id
            # equal to a customer's id is refused by whoever writes it, who reads `customer:<id>`)
            del versions[first[1]]
        elif read[first[1]].value is not None:
            target = read[first[1]].value
            aliases[ident] = target
            pending.append(target)
        pending.extend(include)
        while pending:
            wanted = [keys.customer(i) for i in dict.fromkeys(pending) if i not in customers]
            pending = []
            if not wanted:
                break
            got, hit = self.read(wanted, cached, group)
            from_cache = from_cache or hit
            for key, rec in got.items():
                versions[key] = rec.version
                if rec.value is not None:
                    state: CustomerState = rec.value
                    customers[state.id] = state
                    pending.extend(r for r in state.refs if r not in customers)
        return Snapshot(customers, aliases), versions, extras, from_cache

    def run(
        self,
        ident: str,
        attempt_fn: Callable[[Attempt, datetime], T],
        *,
        idempotency: tuple[str, str] | None = None,
        extra: Iterable[str] = (),
        include: Iterable[str] = (),
    ) -> T:
        """Read, decide with `attempt_fn`, commit; retry on conflict; publish the events of the winning attempt.

        The attempt reads nothing itself: `extra` keys (their values in `Attempt.extras`) and `include`d
        customers are read with the snapshot, and every version read is checked by the commit.

        Every read and the commit name `ident`'s customer group (stores that shard keep a group in one slot).
        `idempotency` = (key, fingerprint of the arguments): recorded with the result in the same commit; a
        replay returns the recorded result without deciding again.
        """
        group = self.group_for(ident)
        extra, include = tuple(extra), tuple(include)
        idem_key = keys.idempotency(ident, idempotency[0]) if idempotency else None
        if idem_key:
            extra = (*extra, idem_key)
        cached = True
        fresh: dict[str, Versioned] = {}
        for _ in self.attempts(f"customer `{ident}`"):
            snap, versions, extras, from_cache = self.snapshot(
                ident, extra, cached=cached, fresh=fresh, group=group, include=include
            )
            now = self.clock.now()
            if idem_key and idempotency:
                seen = extras[idem_key]
                if seen is not None and seen["at"] + keys.IDEMPOTENCY_KEEP >= now:
                    if seen["fingerprint"] != idempotency[1]:
                        raise IdempotencyConflictError(
                            f"idempotency key `{idempotency[0]}` was used with different arguments"
                        )
                    return seen["result"]  # type: ignore[no-any-return]
            attempt = Attempt(snap, versions, extras, group)
            result = attempt_fn(attempt, now)
            if idem_key and idempotency:
                attempt.writes[idem_key] = {"fingerprint": idempotency[1], "result": result, "at": now}
                attempt.expires[idem_key] = now + keys.IDEMPOTENCY_KEEP
            events = self.make_events(attempt.events, now)
            outbox = self.outbox(ident, events, group)
            if not attempt.writes and not outbox:
                if from_cache and not self.confirm(versions, fresh, group):  # never rests on an unconfirmed copy
                    continue
                self.publish(events, (), group)
                return result
            # an answer that writes nothing but owes webhooks commits them checked against what it read (which
            # confirms it, too): an event is delivered only when the state it describes is the store's
            commit = Commit(versions, attempt.writes, outbox, expires=attempt.expires, now=now, group=group)
            done = self.store.commit(commit)
            self.remember(commit, done, fresh)
            if done:
                self.publish(events, outbox, group)
                return result
            cached = bool(done.fresh)  # a store that did not say what moved: read everything again
        raise AssertionError("unreachable: attempts() raises when it runs out")

    def replace_corrupt(self, ident: str, state: CustomerState | None) -> bool:
        """Overwrite (or delete) customer `ident`'s undecodable record, checked against its version only: the
        one repair that must not need to read what it repairs."""
        key = keys.customer(ident)
        versions = getattr(self.store, "versions", None)
        if versions is None:  # only text stores decode, so only they can hold a corrupt record
            raise StoreError(f"cannot repair `{key}` on `{self.store.url}`")
        group = self.group_for(ident)
        for _ in self.attempts(f"replacing the corrupt record `{key}`"):
            commit = Commit(versions([key], group), {key: state}, group=group)
            if self.store.commit(commit):
                if self.cache is not None:
                    self.cache.drop([key])
                return True
        raise AssertionError("unreachable: attempts() raises when it runs out")

    def make_events(self, raw: list[RawEvent], now: datetime) -> list[Event]:
        bus = self.bus
        if not raw or not bus.active:
            return []
        # 128 random bits as 32 hex digits, what uuid4().hex gave, at a quarter of its cost (no UUID object)
        return [Event(name, payload, now, os.urandom(16).hex()) for name, payload in raw if bus.wanted(name)]

    def outbox(self, ident: str, events: list[Event], group: str | None) -> tuple[OutboxEntry, ...]:
        """On a durable store, each event goes into the commit with the handler names it is owed to; on every
        store, one entry per (event as delivered, webhook endpoint that wants it), and one for the history."""
        if not events:
            return ()
        entries = []
        where = group or keys.customer(ident)
        bus = self.bus
        for event in events:
            if self.durable:
                owed = bus.consumers(event)
                if owed:
                    entries.append(OutboxEntry(event.id, where, codec.dump_event(event), owed))
            for delivered, sink in bus.sink_routes(event):
                entry_id = webhooks.delivery_id(sink.name, delivered)
                body = codec.dump_event(delivered)
                entries.append(OutboxEntry(entry_id, where, body, (webhooks.consumer(sink.name),)))
            for delivered in bus.history_routes(event):
                entries.append(
                    OutboxEntry(history.entry_id(delivered), where, codec.dump_event(delivered), (history.CONSUMER,))
                )
        return tuple(entries)

    def publish(self, events: list[Event], outbox: tuple[OutboxEntry, ...], group: str | None) -> None:
        """Deliver committed events; on a durable store, acknowledge them (what a handler failed stays owed).
        Entries of webhook endpoints and of the history are left to background work, which is told of them."""
        if not events:
            return
        owed_by_id = {}
        for entry in outbox:
            if background(entry.consumers):
                self.bus.background_work.set()
            else:
                owed_by_id[entry.id] = entry.consumers
        if not owed_by_id:
            self.bus.publish(events)
            return
        acks: dict[str, tuple[str, ...]] = {}
        for event in events:
            done = self.bus.deliver(event)
            if event.id in owed_by_id:
                acks[event.id] = tuple(c for c in owed_by_id[event.id] if c not in done)
        self.store.commit(Commit({}, {}, acks=acks, group=group))

    def deliver_pending(self, limit: int = 1000) -> int:
        """Give events committed but not acknowledged (a process died between its commit and its handlers) to
        the handlers registered now that still owe them; returns how many events were handled. Call it when a
        worker starts."""
        handled = 0
        for entry in self.store.pending(limit):
            if background(entry.consumers):
                continue  # a webhook dispatcher's, or the history's
            event = codec.load_event(entry.body)
            # 0.1 wrote `<name>|<module>.<qualname>`; what is owed is the name before the bar
            names = tuple(dict.fromkeys(c.split("|", 1)[0] for c in entry.consumers))
            done = self.bus.deliver(event, only=names)
            owed = tuple(c for c in names if c not in done)
            self.store.commit(Commit({}, {}, acks={entry.id: owed}, group=entry.group))
            handled += 1
        return handled
