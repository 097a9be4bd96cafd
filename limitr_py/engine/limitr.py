"""`Limitr`: the engine façade users hold. Built from a document with `Limitr.new(doc)`.

The façade is the only place that reads the store, asks the clock, commits and publishes. Every state-changing
call runs the same loop: read a versioned snapshot of the customer group, decide with pure code
(`engine.decide`, `engine.customers`), commit the change set with the versions it read, and on a conflict read
and decide again. Events are published only after a successful commit, never from a retried attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from limitr_py.clock import Clock, SystemClock
from limitr_py.compile import compile_document
from limitr_py.compile.build import Builder
from limitr_py.compile.graph import CompiledPolicy, Limit, Plan
from limitr_py.documents import load_document
from limitr_py.engine import arguments as args
from limitr_py.engine import customers as ops
from limitr_py.engine import meters
from limitr_py.engine.decide import Decider, OverheadFn, Request, Snapshot, _Call, quantity_in
from limitr_py.engine.events import EventBus, Handler
from limitr_py.engine.exchange import exchange
from limitr_py.engine.records import customer_from, customer_record
from limitr_py.engine.resolve import plan_for, reachable, resolve_customer
from limitr_py.engine.state import ZERO, CustomerState, Override
from limitr_py.engine.values import Customer, Decision, Event
from limitr_py.errors import ConcurrentUpdateError, IdempotencyConflictError, InvalidArgumentError, PolicyCompileError
from limitr_py.schedules import ScheduleError, parse_schedule
from limitr_py.stores import Commit, Store, open_store

T = TypeVar("T")
RawEvent = tuple[str, dict[str, Any]]

MAX_ATTEMPTS = 64
"""Version conflicts one call retries before giving up with ConcurrentUpdateError."""


def _customer_key(ident: str) -> str:
    return f"customer:{ident}"


def _alias_key(alt: str) -> str:
    return f"alias:{alt}"


def _idempotency_key(key: str) -> str:
    return f"idempotency:{key}"


class _Attempt:
    """One read-decide-commit attempt: the snapshot, the versions it saw, and what it wants to write."""

    def __init__(self, snap: Snapshot, versions: dict[str, int]) -> None:
        self.snap = snap
        self.versions = versions
        self.writes: dict[str, Any] = {}
        self.events: list[RawEvent] = []

    def put_customers(self, states: Mapping[str, CustomerState | None]) -> None:
        for ident, state in states.items():
            self.writes[_customer_key(ident)] = state

    def put_aliases(self, aliases: Mapping[str, str | None]) -> None:
        for alt, ident in aliases.items():
            self.writes[_alias_key(alt)] = ident


class Limitr:
    """A policy ready to enforce. Create it with `Limitr.new(doc)`; share it between threads."""

    def __init__(self, compiled: CompiledPolicy, *, store: str | Store | None = None, clock: Clock | None = None,
                 overhead: Mapping[str, OverheadFn] | None = None) -> None:
        self._compiled = compiled
        self._store = open_store(store)
        self._clock: Clock = clock if clock is not None else SystemClock()
        for name, fn in (overhead or {}).items():
            if name not in compiled.credits:
                raise InvalidArgumentError(f"overhead registered for unknown credit `{name}`")
            if not callable(fn):
                raise InvalidArgumentError(f"overhead for credit `{name}` must be callable")
        self._decider = Decider(compiled, overhead)
        self._bus = EventBus(compiled.notifications.values())

    @classmethod
    def new(cls, doc: str | bytes | Path | Mapping[str, Any], *, format: str | None = None,
            store: str | Store | None = None, clock: Clock | None = None, validate: bool = True,
            overhead: Mapping[str, OverheadFn] | None = None) -> Limitr:
        """Load and compile a policy document (JSON, YAML, TOML, Stof text or bytes, a Path, or a mapping).

        Raises PolicyError (with every diagnostic) when the document is invalid. `validate=False` skips the JSON
        Schema pass for documents already validated in CI; the semantic checks always run. `store` is a Store or
        a URL (default `memory://`), `clock` a Clock (default the system clock), `overhead` maps a credit name to
        a callable `(units, context) -> runes` giving the provider cost of a call.
        """
        source = load_document(doc, format=format)
        if validate:
            compiled = compile_document(source)
        else:
            builder = Builder(source)
            compiled = builder.build()
            if builder.problems:
                raise PolicyCompileError(builder.problems)
        return cls(compiled, store=store, clock=clock, overhead=overhead)

    @property
    def policy(self) -> CompiledPolicy:
        """The compiled, immutable policy graph."""
        return self._compiled

    @property
    def fingerprint(self) -> str:
        """sha256 of the policy's canonical form: equal for the same policy in any format."""
        return self._compiled.fingerprint

    @property
    def currency(self) -> str:
        """ISO code of the rune (`policy.currency`, default USD)."""
        return self._compiled.currency

    @property
    def store(self) -> Store:
        return self._store

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- events -------------------------------------------------------------------------------------------------

    def on(self, name: str, handler: Handler) -> None:
        """Call `handler(event)` for every event named `name` (an event name, a notification name, or "*")."""
        self._bus.on(name, handler)

    def off(self, name: str, handler: Handler | None = None) -> None:
        """Remove one handler, or every handler of `name`."""
        self._bus.off(name, handler)

    # -- the read-decide-commit loop -------------------------------------------------------------------------

    def _snapshot(self, ident: str, extra: Iterable[str] = ()) -> tuple[Snapshot, dict[str, int], dict[str, Any]]:
        """The customer `ident` (by id or alt id) and everyone reachable through its refs, with versions.

        `extra` keys are read in the first round trip too; their values come back in the third element.
        """
        first = [_customer_key(ident), _alias_key(ident), *extra]
        read = self._store.read(first)
        versions = {k: v.version for k, v in read.items()}
        extras = {k: read[k].value for k in extra}
        customers: dict[str, CustomerState] = {}
        aliases: dict[str, str] = {}
        record = read[first[0]]
        pending: list[str] = []
        if record.value is not None:
            customers[ident] = record.value
            pending.extend(record.value.refs)
        elif read[first[1]].value is not None:
            target = read[first[1]].value
            aliases[ident] = target
            pending.append(target)
        while pending:
            keys = [_customer_key(i) for i in dict.fromkeys(pending) if i not in customers]
            pending = []
            if not keys:
                break
            for key, rec in self._store.read(keys).items():
                versions[key] = rec.version
                if rec.value is not None:
                    state: CustomerState = rec.value
                    customers[state.id] = state
                    pending.extend(r for r in state.refs if r not in customers)
        return Snapshot(customers, aliases), versions, extras

    def _run(self, ident: str, attempt_fn: Callable[[_Attempt, datetime], T], *,
             idempotency: tuple[str, str] | None = None, extra: Iterable[str] = ()) -> T:
        """Read, decide with `attempt_fn`, commit; retry on conflict; publish the events of the winning attempt.

        `idempotency` = (key, fingerprint of the arguments): recorded with the result in the same commit; a
        replay returns the recorded result without deciding again.
        """
        extra = tuple(extra)
        idem_key = _idempotency_key(idempotency[0]) if idempotency else None
        if idem_key:
            extra = (*extra, idem_key)
        for _ in range(MAX_ATTEMPTS):
            snap, versions, extras = self._snapshot(ident, extra)
            if idem_key and idempotency:
                seen = extras[idem_key]
                if seen is not None:
                    if seen["fingerprint"] != idempotency[1]:
                        raise IdempotencyConflictError(
                            f"idempotency key `{idempotency[0]}` was used with different arguments")
                    return seen["result"]  # type: ignore[no-any-return]
            now = self._clock.now()
            attempt = _Attempt(snap, versions)
            result = attempt_fn(attempt, now)
            if idem_key and idempotency:
                attempt.writes[idem_key] = {"fingerprint": idempotency[1], "result": result, "at": now}
            if not attempt.writes:
                self._publish(attempt.events, now)
                return result
            if self._store.commit(Commit(versions, attempt.writes)):
                self._publish(attempt.events, now)
                return result
        raise ConcurrentUpdateError(f"gave up on customer `{ident}` after {MAX_ATTEMPTS} conflicting attempts")

    def _publish(self, raw: list[RawEvent], now: datetime) -> None:
        if raw and self._bus.active:
            self._bus.publish([Event(name, payload, now, uuid.uuid4().hex) for name, payload in raw])

    def _view(self, ident: str) -> tuple[Snapshot, CustomerState | None]:
        snap, _, _ = self._snapshot(ident)
        return snap, resolve_customer(snap.customers, snap.aliases, ident)

    # -- customers --------------------------------------------------------------------------------------------

    def create_customer(self, id: str, plan: str = "", type: str = "user", label: str = "User",
                        refs: Iterable[str] = (), alt_ids: Iterable[str] = (),
                        metadata: Mapping[str, Any] | None = None) -> Customer | None:
        """Create a customer on `plan` (else the plan of its first ref that has one, else the default plan) and
        start a meter for every limited entitlement now. An existing id is updated (no new meters). None when no
        plan resolves."""
        ident = args.ident(id)
        refs_t, alts_t = args.names(refs, "refs"), args.names(alt_ids, "alt_ids")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidArgumentError("metadata must be a mapping")
        alias_keys = [_alias_key(a) for a in alts_t]

        def attempt(at: _Attempt, now: datetime) -> Customer | None:
            group = dict(at.snap.customers)
            for ref in refs_t:  # refs resolve plans: read them too (they may be outside the current group)
                if ref not in group:
                    extra, versions, _ = self._snapshot(ref)
                    group.update(extra.customers)
                    at.versions.update(versions)
            state, change = ops.create(self._compiled, group, id=ident, plan=plan, type=type, label=label,
                                       refs=refs_t, alt_ids=alts_t, metadata=dict(metadata) if metadata else None,
                                       now=now)
            if state is None:
                return None
            taken = self._store.read(alias_keys)
            for alt in list(change.aliases):
                owner = taken[_alias_key(alt)].value
                if owner not in (None, ident) or alt in group and alt != ident:
                    raise InvalidArgumentError(f"alt id `{alt}` already belongs to customer `{owner or alt}`")
                at.versions[_alias_key(alt)] = taken[_alias_key(alt)].version
            at.put_customers(change.customers)
            at.put_aliases(change.aliases)
            at.events.extend(change.events)
            return ops.public(state)

        return self._run(ident, attempt)

    def customer(self, id: str) -> Customer | None:
        """The customer with this id or alt id, or None."""
        _, state = self._view(args.ident(id))
        return None if state is None else ops.public(state)

    def delete_customer(self, id: str) -> bool:
        """Delete a customer (by id or alt id) and its alt ids. Customers that ref it keep the dangling ref."""
        ident = args.ident(id)

        def attempt(at: _Attempt, now: datetime) -> bool:
            state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
            if state is None:
                return False
            at.put_customers({state.id: None})
            at.put_aliases({alt: None for alt in state.alt_ids})
            at.events.append(("customer-removed", ops.customer_payload(state)))
            return True

        return self._run(ident, attempt)

    def _update(self, ident: str, change: Callable[[CustomerState, _Attempt, datetime], bool]) -> bool:
        """Apply `change` to a copy of the customer; write it and send `customer-set` when it returns True."""

        def attempt(at: _Attempt, now: datetime) -> bool:
            state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
            if state is None:
                return False
            copy = state.copy()
            if not change(copy, at, now):
                return False
            at.put_customers({copy.id: copy})
            at.events.append(("customer-set", ops.customer_payload(copy)))
            return True

        return self._run(ident, attempt)

    def set_customer_plan(self, id: str, plan: str, overwrite_meters: bool = False) -> bool:
        """Move a customer to `plan`, keeping its usage (new meters join the current period). False when the
        plan or customer is unknown or the customer is already on it."""
        ident = args.ident(id)

        def attempt(at: _Attempt, now: datetime) -> bool:
            state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
            if state is None:
                return False
            change = ops.set_plan(self._compiled, at.snap.customers, state, plan, overwrite_meters, now)
            if change is None:
                return False
            at.put_customers(change.customers)
            at.events.extend(change.events)
            return True

        return self._run(ident, attempt)

    def set_customer_refs(self, id: str, refs: Iterable[str]) -> bool:
        refs_t = args.names(refs, "refs")

        def change(c: CustomerState, at: _Attempt, now: datetime) -> bool:
            c.refs = refs_t
            return True

        return self._update(args.ident(id), change)

    def set_alt_customer_id(self, id: str, alt: str) -> bool:
        """Let `alt` name the customer too. False when the customer is unknown or `alt` is taken."""
        ident, alt_id = args.ident(id), args.ident(alt, "alt id")

        def attempt(at: _Attempt, now: datetime) -> bool:
            state = resolve_customer(at.snap.customers, at.snap.aliases, ident)
            taken = self._store.read([_alias_key(alt_id), _customer_key(alt_id)])
            if state is None or taken[_customer_key(alt_id)].value is not None:
                return False
            if taken[_alias_key(alt_id)].value not in (None, state.id):
                return False
            at.versions.update({k: v.version for k, v in taken.items()})
            copy = state.copy()
            if alt_id not in copy.alt_ids:
                copy.alt_ids = (*copy.alt_ids, alt_id)
            at.put_customers({copy.id: copy})
            at.put_aliases({alt_id: copy.id})
            at.events.append(("customer-set", ops.customer_payload(copy)))
            return True

        return self._run(ident, attempt)

    def delete_alt_customer_id(self, alt: str) -> bool:
        alt_id = args.ident(alt, "alt id")

        def attempt(at: _Attempt, now: datetime) -> bool:
            target = at.snap.aliases.get(alt_id)
            state = at.snap.customers.get(target) if target else None
            if state is None:
                return False
            copy = state.copy()
            copy.alt_ids = tuple(a for a in copy.alt_ids if a != alt_id)
            at.put_customers({copy.id: copy})
            at.put_aliases({alt_id: None})
            at.events.append(("customer-set", ops.customer_payload(copy)))
            return True

        return self._run(alt_id, attempt)

    def create_customer_override(self, id: str, entitlement: str, *, expires: datetime | None = None,
                                 credit: str | None = None, mode: str | None = None, value: Any = None,
                                 increment: Any = None, resets: bool | None = None, reset_inc: Any = None,
                                 reset_sch: str | None = None) -> Limit | None:
        """Give one customer its own limit for an entitlement (replacing any earlier override) until `expires`.

        Unset fields copy the limit in force (an existing override, else the plan's); fields the signature does
        not name (governor, minimum, hard_trailing …) take Limit's defaults, as in Limitr. None when the
        customer, entitlement or credit is unknown.
        """
        ident, ent_name = args.ident(id), args.ident(entitlement, "entitlement")
        if mode is not None and mode not in ("hard", "soft", "observe"):
            raise InvalidArgumentError(f"mode must be `hard`, `soft` or `observe`, got `{mode}`")
        if reset_inc is not None and reset_sch is not None:
            raise InvalidArgumentError("reset_inc and reset_sch are mutually exclusive")
        period = args.duration(reset_inc, "reset_inc") if reset_inc is not None else None
        try:
            schedule = parse_schedule(reset_sch) if reset_sch is not None else None
        except ScheduleError as exc:
            raise InvalidArgumentError(str(exc)) from None
        until = args.when(expires, "expires")
        made: list[Limit] = []

        def change(c: CustomerState, at: _Attempt, now: datetime) -> bool:
            plan = self._plan_of(at.snap, c)
            ent = plan.entitlements.get(ent_name) if plan else None
            if ent is None:
                return False
            base = c.overrides[ent_name].limit if ent_name in c.overrides else ent.limit
            credit_name = credit or (base.credit if base else None)
            found = self._compiled.credits.get(credit_name or "")
            if found is None:
                return False
            limit = Limit(
                credit=found.name, mode=mode or (base.mode if base else "hard"),
                value=quantity_in(found, args.quantity(value)) if value is not None else (base.value if base else ZERO),
                increment=(quantity_in(found, args.quantity(increment, "increment")) if increment is not None
                           else (base.increment if base else ZERO)),
                resets=resets if resets is not None else (base.resets if base else False),
                reset_inc=period if period or schedule else (base.reset_inc if base else None),
                reset_sch=schedule if period or schedule else (base.reset_sch if base else None))
            c.overrides[ent_name] = Override(limit, until)
            made.append(limit)
            return True

        return made[-1] if self._update(ident, change) else None

    def remove_customer_override(self, id: str, entitlement: str) -> bool:
        ent_name = args.ident(entitlement, "entitlement")

        def change(c: CustomerState, at: _Attempt, now: datetime) -> bool:
            return c.overrides.pop(ent_name, None) is not None

        return self._update(args.ident(id), change)

    def customers(self) -> list[dict[str, Any]]:
        """Every customer's full state as JSON-safe records (numbers as strings), for export or backup."""
        return [customer_record(state) for _, state in self._store.scan("customer:")]

    def set_customer(self, record: Mapping[str, Any]) -> Customer:
        """Insert or replace a customer from a record of `customers()` (state restore); re-registers alt ids."""
        state = customer_from(record)

        def attempt(at: _Attempt, now: datetime) -> Customer:
            old = at.snap.customers.get(state.id)
            at.put_customers({state.id: state})
            at.put_aliases({alt: None for alt in (old.alt_ids if old else ()) if alt not in state.alt_ids})
            at.put_aliases({alt: state.id for alt in state.alt_ids})
            at.events.append(("customer-set", ops.customer_payload(state)))
            return ops.public(state)

        return self._run(state.id, attempt)

    def load_customers(self, records: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]]) -> int:
        """`set_customer` for each record (a list, or a mapping id → record); returns how many were loaded."""
        items = list(records.values()) if isinstance(records, Mapping) else list(records)
        states = [customer_from(r) for r in items]  # every record is checked before any is written
        for state in states:
            self.set_customer(customer_record(state))
        return len(states)

    # -- metering ---------------------------------------------------------------------------------------------

    def _meter_call(self, id: str, entitlement: str, request: Request, *, write: bool,
                    idempotency_key: str | None = None, op: str = "allow") -> bool:
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        idem = None
        if idempotency_key is not None:
            key = args.ident(idempotency_key, "idempotency_key")
            idem = (key, repr((op, ident, entitlement, request.value, request.step, request.force,
                               request.overhead, request.send_events)))
        if not write:
            snap, _, _ = self._snapshot(ident)
            return self._decider.check(snap, request, self._clock.now()).allowed

        def attempt(at: _Attempt, now: datetime) -> bool:
            outcome = self._decider.allow(at.snap, request, now)
            at.put_customers(outcome.changed)
            at.events.extend(outcome.events)
            return outcome.allowed

        return self._run(ident, attempt, idempotency=idem)

    def allow(self, id: str, entitlement: str, value: Any = 0, *, event: Any = True, cap: Any = None,
              overhead: Any = None, force: bool = False, idempotency_key: str | None = None) -> bool:
        """Decide and meter one call. False for an unknown customer or entitlement (never an exception).

        `value` may carry a unit (`'250MB'`) and may be negative (a decrement). `event`: a bool, or a mapping /
        JSON text that turns events on and becomes their `event_data` and the overhead context. `overhead`: the
        provider cost of this call in runes. `force`: record usage that already happened (passes any limit).
        `idempotency_key`: a retry with the same key returns the first answer and meters nothing.
        """
        if cap is not None:
            raise InvalidArgumentError("call-scoped caps are not supported yet")
        send, data = args.events(event)
        request = Request(id if isinstance(id, str) else "", entitlement, args.quantity(value), 0, send, data,
                          args.optional_amount(overhead, "overhead"), bool(force))
        return self._meter_call(id, entitlement, request, write=True, idempotency_key=idempotency_key)

    def track(self, id: str, entitlement: str, value: Any, *, event: Any = True, overhead: Any = None,
              idempotency_key: str | None = None) -> bool:
        """Record usage that already happened: `allow(..., force=True)`."""
        return self.allow(id, entitlement, value, event=event, overhead=overhead, force=True,
                          idempotency_key=idempotency_key)

    def check(self, id: str, entitlement: str, value: Any = 0, *, cap: Any = None,
              context: Mapping[str, Any] | None = None, overhead: Any = None) -> bool:
        """Would `allow` pass? The same decision, with nothing changed and no events."""
        return self.explain(id, entitlement, value, cap=cap, context=context, overhead=overhead).allowed

    def explain(self, id: str, entitlement: str, value: Any = 0, *, cap: Any = None,
                context: Mapping[str, Any] | None = None, overhead: Any = None) -> Decision:
        """`check()` and why: every gate evaluated, the one that decided, the limit type and the headroom."""
        if cap is not None:
            raise InvalidArgumentError("call-scoped caps are not supported yet")
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        request = Request(ident, entitlement, args.quantity(value), 0, False, args.context(context),
                          args.optional_amount(overhead, "overhead"))
        snap, _, _ = self._snapshot(ident)
        return self._decider.check(snap, request, self._clock.now()).decision

    def _step(self, id: str, entitlement: str, step: int, event: Any, write: bool) -> bool:
        send, data = args.events(event)
        request = Request(id if isinstance(id, str) else "", entitlement, None, step, send, data)
        return self._meter_call(id, entitlement, request, write=write)

    def increment(self, id: str, entitlement: str, *, event: Any = True, cap: Any = None) -> bool:
        """`allow` the limit's standard `increment` (default 1)."""
        return self._step(id, entitlement, 1, event, True)

    def decrement(self, id: str, entitlement: str, *, event: Any = True, cap: Any = None) -> bool:
        """`allow` minus the limit's standard `increment`."""
        return self._step(id, entitlement, -1, event, True)

    def check_increment(self, id: str, entitlement: str, *, cap: Any = None) -> bool:
        return self._step(id, entitlement, 1, False, False)

    def check_decrement(self, id: str, entitlement: str, *, cap: Any = None) -> bool:
        return self._step(id, entitlement, -1, False, False)

    # -- reads ------------------------------------------------------------------------------------------------

    def _plan_of(self, snap: Snapshot, state: CustomerState) -> Plan | None:
        return plan_for(self._compiled, snap.customers, state)

    def _locate(self, id: str, entitlement: str) -> tuple[_Call | None, datetime]:
        """The resolved meter of a read (None for unknowns and feature flags) and the time it was read at."""
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        snap, _, _ = self._snapshot(ident)
        now = self._clock.now()
        call = self._decider.locate(snap, ident, entitlement, now)
        return call, now

    def _current(self, call: _Call, now: datetime) -> Decimal:
        """Usage in the current period: 0 when the meter's period has ended but no call has reset it yet."""
        if call.meter is None or meters.reset_pending(call.limit, call.meter, now) is not None:
            return ZERO
        return call.meter.value

    def value(self, id: str, entitlement: str, percent: bool = False, grants: bool = True) -> Decimal | None:
        """Usage this period in the credit's units (or, with `percent`, the share of the limit used)."""
        call, now = self._locate(id, entitlement)
        if call is None:
            return None
        if percent:
            left = self.remaining(id, entitlement, True, grants)
            return None if left is None else 100 - left
        return self._current(call, now)

    def remaining(self, id: str, entitlement: str, percent: bool = False, grants: bool = True) -> Decimal | None:
        """Units left this period (negative after a trailing overshoot); None for observe limits and flags."""
        call, now = self._locate(id, entitlement)
        if call is None or call.limit.mode == "observe":
            return None
        used, limit_value = self._current(call, now), call.limit.value
        left = limit_value - used
        if not percent:
            return left
        return ZERO if limit_value == 0 else max(ZERO, left) / limit_value * 100

    def limit(self, id: str, entitlement: str, grants: bool = True) -> Decimal | None:
        """The limit in credit units; `id` may be a customer or a plan. None for observe limits and flags."""
        ident = args.ident(id)
        plan = self._compiled.plans.get(ident)
        if plan is not None:
            ent = plan.entitlements.get(entitlement)
            lim = ent.limit if ent else None
            return None if lim is None or lim.mode == "observe" else lim.value
        call, _ = self._locate(ident, entitlement)
        return None if call is None or call.limit.mode == "observe" else call.limit.value

    def allowance(self, id: str, entitlement: str, grants: bool = True) -> Decimal | None:
        """`remaining`, capped by the governor's tokens available now."""
        call, now = self._locate(id, entitlement)
        left = self.remaining(id, entitlement, False, grants)
        if call is None or left is None or not meters.governed(call.limit):
            return left
        pending = meters.reset_pending(call.limit, call.meter, now) is not None
        return min(left, meters.governor_available(call.limit, None if pending else call.meter, now))

    def cost(self, id: str, entitlement: str) -> Decimal | None:
        """The limit's standard increment; `id` may be a plan."""
        ident = args.ident(id)
        plan = self._compiled.plans.get(ident)
        if plan is not None:
            ent = plan.entitlements.get(entitlement)
            return ent.limit.increment if ent and ent.limit else None
        call, _ = self._locate(ident, entitlement)
        return None if call is None else call.limit.increment

    def resets(self, id: str, entitlement: str) -> datetime | None:
        """When the current period ends (None when the limit does not reset)."""
        call, now = self._locate(id, entitlement)
        return None if call is None else meters.next_reset(call.limit, call.meter, now)

    def _history(self, id: str, entitlement: str) -> tuple[tuple[datetime, Decimal], ...]:
        call, now = self._locate(id, entitlement)
        if call is None or call.meter is None or meters.reset_pending(call.limit, call.meter, now) is not None:
            return ()
        return call.meter.history

    def rate(self, id: str, entitlement: str) -> Decimal:
        """Units per millisecond between the last two calls (0 with fewer, or when a reset is pending)."""
        return meters.rate(self._history(id, entitlement))

    def acceleration(self, id: str, entitlement: str) -> Decimal:
        """Change of rate, units per ms², over the last three calls."""
        return meters.acceleration(self._history(id, entitlement))

    def projected_exhaustion(self, id: str, entitlement: str, smoothed: bool = False,
                             grants: bool = True) -> timedelta | None:
        """How long until the limit is used up at the current rate; None when not rising or nothing remains."""
        call, now = self._locate(id, entitlement)
        if call is None or call.meter is None or meters.reset_pending(call.limit, call.meter, now) is not None:
            return None
        left = self.remaining(id, entitlement, False, grants)
        per_ms = (call.meter.ewma_rate or ZERO) if smoothed else meters.rate(call.meter.history)
        if left is None or left <= 0 or per_ms <= 0:
            return None
        return timedelta(microseconds=int(left / per_ms * 1000))

    def credit_exchange(self, from_credit: str, to_credit: str, value: Any = 1) -> Decimal | None:
        """`value` units of `from_credit` in `to_credit`, through runes; None when there is no path."""
        amount = args.amount(value, "value")
        return exchange(self._compiled, amount, args.ident(from_credit, "credit"), args.ident(to_credit, "credit"))

    # -- helpers used by tests and tools -------------------------------------------------------------------------

    def customer_state(self, id: str) -> CustomerState | None:
        """The stored state of a customer (a copy; changing it changes nothing)."""
        _, state = self._view(args.ident(id))
        return None if state is None else replace(state.copy(), meters={k: m.copy() for k, m in state.meters.items()})

    def reachable(self, id: str) -> list[str]:
        """Ids of every customer reachable through `id`'s refs (breadth-first)."""
        snap, state = self._view(args.ident(id))
        return [] if state is None else [c.id for c in reachable(snap.customers, state)]
