"""`Engine`: the public methods of `Limitr` over a compiled policy and a Store (`limitr_py/limitr.py` adds `new`).

The façade is the only place that reads the store, asks the clock, commits and publishes. Every state-changing
call runs the same loop: read a versioned snapshot of the customer group, decide with pure code
(`engine.decide`, `engine.customers`), commit the change set with the versions it read, and on a conflict read
and decide again. Events are published only after a successful commit, never from a retried attempt.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Self

from limitr_py.clock import Clock, SystemClock
from limitr_py.compile.graph import MODES, CompiledPolicy, Limit, Plan
from limitr_py.engine import arguments as args
from limitr_py.engine import billing_args, controls, holds, invoices, keys, margins, meters, reads
from limitr_py.engine import caps as caps_mod
from limitr_py.engine import customers as ops
from limitr_py.engine import grants as grants_mod
from limitr_py.engine.arguments import UNSET, CapArg, DurationLike, EventArg, NumberLike
from limitr_py.engine.commands import caps as cap_commands
from limitr_py.engine.commands import controls as control_commands
from limitr_py.engine.commands import customers as customer_commands
from limitr_py.engine.commands import entities as entity_commands
from limitr_py.engine.commands import grants as grant_commands
from limitr_py.engine.commands import holds as hold_commands
from limitr_py.engine.commands import metering
from limitr_py.engine.decide import Call, Decider, OverheadFn, Request, Snapshot, quantity_in
from limitr_py.engine.estimates import Estimate
from limitr_py.engine.events import EventBus, Handler
from limitr_py.engine.exact import exact
from limitr_py.engine.exchange import RUNE, exchange
from limitr_py.engine.records import customer_record
from limitr_py.engine.resolve import plan_for, reachable, resolve_customer
from limitr_py.engine.state import ON_LIMIT_REACHED, ZERO, Cap, CustomerState, Grant, OverageLimit
from limitr_py.engine.txn import Attempt, Runner
from limitr_py.engine.values import BillingConfig, Customer, Decision, Invoice
from limitr_py.errors import (
    CorruptRecordError,
    InvalidArgumentError,
)
from limitr_py.schedules import ScheduleError, parse_schedule
from limitr_py.stores.base import Commit, Store


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


@exact
class Engine:
    """A compiled policy enforced on a store: every public method of `Limitr` (limitr_py/limitr.py adds reading
    documents and opening stores by URL, so this module needs neither the parsers nor the store drivers)."""

    def __init__(
        self,
        compiled: CompiledPolicy,
        *,
        store: Store,
        clock: Clock | None = None,
        overhead: Mapping[str, OverheadFn] | None = None,
    ) -> None:
        self._compiled = compiled
        self._cap_credits = frozenset({RUNE, *compiled.credits})  # what a call's `cap=` may name
        self._clock: Clock = clock if clock is not None else SystemClock()
        for name, fn in (overhead or {}).items():
            if name not in compiled.credits:
                raise InvalidArgumentError(f"overhead registered for unknown credit `{name}`")
            if not callable(fn):
                raise InvalidArgumentError(f"overhead for credit `{name}` must be callable")
        self._decider = Decider(compiled, overhead)
        self._bus = EventBus(compiled.notifications.values())
        self._txn = Runner(store, self._clock, self._bus)

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
        return self._txn.store

    def close(self) -> None:
        """Release the store's connections (files, sockets). The engine cannot be used afterwards."""
        self._txn.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def _probe_on(self) -> bool:
        """Whether `limit-reached` transitions are worth working out: someone listens for them."""
        return self._bus.listens("limit-reached")

    # -- the read-decide-commit loop -------------------------------------------------------------------------

    # -- customer groups (stores that shard: Redis Cluster) ----------------------------------------------------

    def deliver_pending(self, limit: int = 1000) -> int:
        """Give events committed but not acknowledged (a process died between its commit and its handlers) to
        the handlers registered now that still owe them; returns how many events were handled. Call it when a
        worker starts."""
        return self._txn.deliver_pending(args.count(limit, "limit", 1, 100_000))

    def _view(self, ident: str) -> tuple[Snapshot, CustomerState | None]:
        snap, _, _, _ = self._txn.snapshot(ident)
        return snap, resolve_customer(snap.customers, snap.aliases, ident)

    # -- customers --------------------------------------------------------------------------------------------

    def create_customer(
        self,
        id: str,
        plan: str = "",
        type: str = "user",
        label: str = "User",
        refs: Iterable[str] = (),
        alt_ids: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Customer | None:
        """Create a customer on `plan` (else the plan of its first ref that has one, else the default plan) and
        start a meter for every limited entitlement now. An existing id is updated (no new meters). None when no
        plan resolves."""
        ident = args.ident(id)
        plan = args.known(plan, self._compiled.plans, "plan") if plan != "" else ""
        type, label = args.text(type, "type"), args.text(label, "label")
        refs_t, alts_t = args.names(refs, "refs"), args.names(alt_ids, "alt_ids")
        fields = {
            "plan": plan,
            "type": type,
            "label": label,
            "refs": refs_t,
            "alt_ids": alts_t,
            "metadata": args.optional_data(metadata, "metadata") or None,
        }
        alias_keys = [keys.alias(a) for a in alts_t]

        def attempt(at: Attempt, now: datetime) -> Customer | None:
            return customer_commands.create(self._compiled, at, now, ident, fields)

        if self._txn.grouped:  # a customer lives in its org's group (its first ref's), so one call never spans slots
            group = self._txn.group_of_refs(refs_t) or self._txn.group_for(ident) or ident
            if refs_t and self._txn.group_for(ident) not in (ident, group):
                raise InvalidArgumentError(
                    f"`{ident}` already belongs to another group; on a sharded store its refs cannot move it"
                )
            for name in (ident, *alts_t):
                if not self._txn.locate_in(name, group):
                    raise InvalidArgumentError(f"alt id `{name}` already belongs to a customer of another group")
        return self._txn.run(ident, attempt, extra=alias_keys, include=refs_t)

    def customer(self, id: str) -> Customer | None:
        """The customer with this id or alt id, or None; `.billing` holds its billing controls."""
        snap, state = self._view(args.ident(id))
        if state is None:
            return None
        return ops.public(state, controls.billing_view(self._compiled, snap.customers, state, self._clock.now()))

    def delete_customer(self, id: str) -> bool:
        """Delete a customer (by id or alt id) and its alt ids. Customers that ref it keep the dangling ref. A
        customer whose record cannot be decoded is deleted too (its alt ids then resolve to nobody)."""
        ident = args.ident(id)

        try:
            return self._txn.run(ident, lambda at, now: customer_commands.delete(at, now, ident))
        except CorruptRecordError as exc:
            if exc.key != keys.customer(ident):
                raise
            return self._txn.replace_corrupt(ident, None)

    def _update(self, ident: str, change: customer_commands.Change) -> bool:
        """Apply `change` to a copy of the customer; write it and send `customer-set` when it returns True."""
        return self._txn.run(ident, lambda at, now: customer_commands.update(at, now, ident, change))

    def set_customer_plan(self, id: str, plan: str, overwrite_meters: bool = False) -> bool:
        """Move a customer to `plan`, keeping its usage (new meters join the current period). False when the
        plan or customer is unknown or the customer is already on it."""
        ident = args.ident(id)
        plan = args.ident(plan, "plan")
        overwrite_meters = args.flag(overwrite_meters, "overwrite_meters")

        def attempt(at: Attempt, now: datetime) -> bool:
            return customer_commands.set_plan(self._compiled, at, now, ident, plan, overwrite_meters)

        return self._txn.run(ident, attempt)

    def set_customer_refs(self, id: str, refs: Iterable[str]) -> bool:
        """Replace a customer's refs. On a sharded store the new refs must be in the customer's group."""
        refs_t = args.names(refs, "refs")
        if self._txn.grouped and refs_t and self._txn.group_of_refs(refs_t) != self._txn.group_for(args.ident(id)):
            raise InvalidArgumentError(f"on a sharded store `{id}` cannot ref customers of another group")

        def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
            c.refs = refs_t
            return True

        return self._update(args.ident(id), change)

    def set_alt_customer_id(self, id: str, alt: str) -> bool:
        """Let `alt` name the customer too. False when the customer is unknown or `alt` is taken."""
        ident, alt_id = args.ident(id), args.ident(alt, "alt id")
        if self._txn.grouped and not self._txn.locate_in(alt_id, self._txn.group_for(ident) or ident):
            return False
        taken = [keys.alias(alt_id), keys.customer(alt_id)]  # read with the snapshot, their versions committed
        return self._txn.run(ident, lambda at, now: customer_commands.add_alt_id(at, now, ident, alt_id), extra=taken)

    def delete_alt_customer_id(self, alt: str) -> bool:
        alt_id = args.ident(alt, "alt id")

        return self._txn.run(alt_id, lambda at, now: customer_commands.delete_alt_id(at, now, alt_id))

    def create_customer_override(
        self,
        id: str,
        entitlement: str,
        *,
        expires: datetime | None = None,
        credit: str | None = None,
        mode: str | None = None,
        value: NumberLike | None = None,
        increment: NumberLike | None = None,
        resets: bool | None = None,
        reset_inc: DurationLike | None = None,
        reset_sch: str | None = None,
    ) -> Limit | None:
        """Give one customer its own limit for an entitlement (replacing any earlier override) until `expires`.

        Unset fields copy the limit in force (an existing override, else the plan's); fields the signature does
        not name (governor, minimum, hard_trailing …) take Limit's defaults, as in Limitr. None when the
        customer, entitlement or credit is unknown.
        """
        ident, ent_name = args.ident(id), args.ident(entitlement, "entitlement")
        credit = args.optional_ident(credit, "credit")
        resets = args.optional_flag(resets, "resets")
        quantity = args.quantity(value) if value is not None else None
        step = args.quantity(increment, "increment") if increment is not None else None
        checked_mode = args.one_of(mode, MODES, "mode") if mode is not None else None
        if reset_inc is not None and reset_sch is not None:
            raise InvalidArgumentError("reset_inc and reset_sch are mutually exclusive")
        period = args.duration(reset_inc, "reset_inc") if reset_inc is not None else None
        try:
            schedule = parse_schedule(reset_sch) if reset_sch is not None else None
        except ScheduleError as exc:
            raise InvalidArgumentError(str(exc)) from None
        spec = customer_commands.OverrideSpec(
            ent_name, credit, checked_mode, quantity, step, resets, period, schedule, args.when(expires, "expires")
        )
        made: list[Limit] = []
        return made[-1] if self._update(ident, customer_commands.override(self._compiled, spec, made)) else None

    def remove_customer_override(self, id: str, entitlement: str) -> bool:
        ent_name = args.ident(entitlement, "entitlement")

        def change(c: CustomerState, at: Attempt, now: datetime) -> bool:
            return c.overrides.pop(ent_name, None) is not None

        return self._update(args.ident(id), change)

    def customers(self) -> list[dict[str, Any]]:
        """Every customer's full state as JSON-safe records (numbers as strings), for export or backup."""
        return [customer_record(state) for _, state in self._txn.store.scan(keys.CUSTOMER.prefix)]

    def set_customer(self, record: Mapping[str, Any]) -> Customer:
        """Insert or replace a customer from a record of `customers()` (state restore); re-registers alt ids."""
        state = args.customer_record(record, self._compiled.plans)
        if self._txn.grouped:
            group = self._txn.group_of_refs(state.refs) or self._txn.group_for(state.id) or state.id
            for name in (state.id, *state.alt_ids):
                if not self._txn.locate_in(name, group):
                    raise InvalidArgumentError(f"alt id `{name}` already belongs to a customer of another group")

        def attempt(at: Attempt, now: datetime) -> Customer:
            return customer_commands.restore(at, now, state)

        try:
            return self._txn.run(state.id, attempt)
        except CorruptRecordError as exc:
            if exc.key != keys.customer(state.id):
                raise
            self._txn.replace_corrupt(state.id, None)  # then restore as onto a deleted customer
            return self._txn.run(state.id, attempt)

    def load_customers(self, records: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]]) -> int:
        """`set_customer` for each record (a list, or a mapping id → record); returns how many were loaded."""
        if isinstance(records, str | bytes) or not isinstance(records, Mapping | Iterable):
            raise InvalidArgumentError(
                f"records must be a list or a mapping of customer records, got `{type(records).__name__}`"
            )
        items = list(records.values()) if isinstance(records, Mapping) else list(records)
        if not all(isinstance(r, Mapping) for r in items):
            raise InvalidArgumentError("every customer record must be a mapping (as `customers()` exports them)")
        states = [args.customer_record(r, self._compiled.plans) for r in items]  # all checked before any is written
        for state in states:
            self.set_customer(customer_record(state))
        return len(states)

    # -- metering ---------------------------------------------------------------------------------------------

    def _meter_call(
        self,
        id: str,
        entitlement: str,
        request: Request,
        *,
        write: bool,
        idempotency_key: str | None = None,
        op: str = "allow",
        decisions: list[Decision] | None = None,
    ) -> bool:
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        idem = None
        if idempotency_key is not None:
            key = args.ident(idempotency_key, "idempotency_key")
            idem = (
                key,
                args.fingerprint(
                    op,
                    ident,
                    entitlement,
                    request.value,
                    request.step,
                    request.force,
                    request.overhead,
                    request.send_events,
                ),
            )
        if not write:
            snap, _, _, _ = self._txn.snapshot(ident)
            return self._decider.check(snap, request, self._clock.now()).allowed

        def attempt(at: Attempt, now: datetime) -> bool:
            return metering.meter(self._decider, at, now, request, decisions)

        return self._txn.run(ident, attempt, idempotency=idem)

    def _allow_request(
        self,
        id: str,
        value: NumberLike,
        event: EventArg,
        cap: CapArg,
        overhead: NumberLike | None,
        force: bool,
        entitlement: str,
    ) -> Request:
        send, data = args.events(event)
        return Request(
            id if isinstance(id, str) else "",
            entitlement,
            args.quantity(value),
            0,
            send,
            data,
            args.optional_amount(overhead, "overhead"),
            args.flag(force, "force"),
            args.call_caps(cap, self._cap_credits),
            self._probe_on(),
        )

    def allow(
        self,
        id: str,
        entitlement: str,
        value: NumberLike = 0,
        *,
        event: EventArg = True,
        cap: CapArg = None,
        overhead: NumberLike | None = None,
        force: bool = False,
        idempotency_key: str | None = None,
    ) -> bool:
        """Decide and meter one call. False for an unknown customer or entitlement (never an exception).

        `value` may carry a unit (`'250MB'`) and may be negative (a decrement). `event`: a bool, or a mapping /
        JSON text that turns events on and becomes their `event_data` and the overhead context. `overhead`: the
        provider cost of this call in runes. `force`: record usage that already happened (passes any limit).
        `idempotency_key`: a retry with the same key returns the first answer and meters nothing.
        """
        request = self._allow_request(id, value, event, cap, overhead, force, entitlement)
        return self._meter_call(id, entitlement, request, write=True, idempotency_key=idempotency_key)

    def allow_explained(
        self,
        id: str,
        entitlement: str,
        value: NumberLike = 0,
        *,
        event: EventArg = True,
        cap: CapArg = None,
        overhead: NumberLike | None = None,
        force: bool = False,
    ) -> Decision:
        """`allow`, returning the committed call's `Decision` instead of a bool (`.allowed` is allow's answer):
        why a metered call was denied without deciding twice (simulators, replays, the HTTP service). An unknown
        customer is a denial at gate `customer`."""
        request = self._allow_request(id, value, event, cap, overhead, force, entitlement)
        decisions: list[Decision] = []
        allowed = self._meter_call(id, entitlement, request, write=True, decisions=decisions)
        return decisions[0] if decisions else Decision(allowed, "unknown", None, None, ())

    def track(
        self,
        id: str,
        entitlement: str,
        value: NumberLike,
        *,
        event: EventArg = True,
        overhead: NumberLike | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        """Record usage that already happened: `allow(..., force=True)`."""
        return self.allow(
            id, entitlement, value, event=event, overhead=overhead, force=True, idempotency_key=idempotency_key
        )

    def check(
        self,
        id: str,
        entitlement: str,
        value: NumberLike = 0,
        *,
        cap: CapArg = None,
        context: Mapping[str, Any] | None = None,
        overhead: NumberLike | None = None,
    ) -> bool:
        """Would `allow` pass? The same decision, with nothing changed and no events."""
        return self.explain(id, entitlement, value, cap=cap, context=context, overhead=overhead).allowed

    def explain(
        self,
        id: str,
        entitlement: str,
        value: NumberLike = 0,
        *,
        cap: CapArg = None,
        context: Mapping[str, Any] | None = None,
        overhead: NumberLike | None = None,
    ) -> Decision:
        """`check()` and why: every gate evaluated, the one that decided, the limit type and the headroom."""
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        request = Request(
            ident,
            entitlement,
            args.quantity(value),
            0,
            False,
            args.context(context),
            args.optional_amount(overhead, "overhead"),
            caps=args.call_caps(cap, self._cap_credits),
        )
        snap, _, _, _ = self._txn.snapshot(ident)
        return self._decider.check(snap, request, self._clock.now()).decision

    def _step(self, id: str, entitlement: str, step: int, event: EventArg, write: bool, cap: CapArg) -> bool:
        send, data = args.events(event)
        request = Request(
            id if isinstance(id, str) else "",
            entitlement,
            None,
            step,
            send,
            data,
            caps=args.call_caps(cap, self._cap_credits),
            probe=write and self._probe_on(),
        )
        return self._meter_call(id, entitlement, request, write=write)

    def increment(self, id: str, entitlement: str, *, event: EventArg = True, cap: CapArg = None) -> bool:
        """`allow` the limit's standard `increment` (default 1)."""
        return self._step(id, entitlement, 1, event, True, cap)

    def decrement(self, id: str, entitlement: str, *, event: EventArg = True, cap: CapArg = None) -> bool:
        """`allow` minus the limit's standard `increment`."""
        return self._step(id, entitlement, -1, event, True, cap)

    def check_increment(self, id: str, entitlement: str, *, cap: CapArg = None) -> bool:
        return self._step(id, entitlement, 1, False, False, cap)

    def check_decrement(self, id: str, entitlement: str, *, cap: CapArg = None) -> bool:
        return self._step(id, entitlement, -1, False, False, cap)

    # -- reads ------------------------------------------------------------------------------------------------

    def _plan_of(self, snap: Snapshot, state: CustomerState) -> Plan | None:
        return plan_for(self._compiled, snap.customers, state)

    def _locate(self, id: str, entitlement: str) -> tuple[Call | None, datetime]:
        """The resolved meter of a read (None for unknowns and feature flags) and the time it was read at."""
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        snap, _, _, _ = self._txn.snapshot(ident)
        now = self._clock.now()
        call = self._decider.locate(snap, ident, entitlement, now)
        return call, now

    def value(self, id: str, entitlement: str, percent: bool = False, grants: bool = True) -> Decimal | None:
        """Usage this period in the credit's units (or, with `percent`, the share of the limit used)."""
        percent, grants = args.flag(percent, "percent"), args.flag(grants, "grants")
        call, now = self._locate(id, entitlement)
        return None if call is None else reads.used(self._decider, call, now, percent, grants)

    def remaining(self, id: str, entitlement: str, percent: bool = False, grants: bool = True) -> Decimal | None:
        """Units left this period, grants included unless `grants=False` (negative after a trailing overshoot);
        None for observe limits and flags."""
        percent, grants = args.flag(percent, "percent"), args.flag(grants, "grants")
        call, now = self._locate(id, entitlement)
        return None if call is None else reads.left(self._decider, call, now, percent, grants)

    def limit(self, id: str, entitlement: str, grants: bool = True) -> Decimal | None:
        """The limit in credit units (plus the grant balance for a customer unless `grants=False`); `id` may be a
        customer or a plan. None for observe limits and flags."""
        ident, grants = args.ident(id), args.flag(grants, "grants")
        plan = self._compiled.plans.get(ident)
        if plan is not None:
            ent = plan.entitlements.get(entitlement)
            lim = ent.limit if ent else None
            return None if lim is None or lim.mode == "observe" else lim.value
        call, now = self._locate(ident, entitlement)
        return None if call is None else reads.limit_with_grants(self._decider, call, now, grants)

    def allowance(self, id: str, entitlement: str, grants: bool = True) -> Decimal | None:
        """`remaining`, capped by the governor's tokens available now."""
        grants = args.flag(grants, "grants")
        call, now = self._locate(id, entitlement)
        return None if call is None else reads.allowance(self._decider, call, now, grants)

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
        return () if call is None else reads.history(call, now)

    def rate(self, id: str, entitlement: str) -> Decimal:
        """Units per millisecond between the last two calls (0 with fewer, or when a reset is pending)."""
        return meters.rate(self._history(id, entitlement))

    def acceleration(self, id: str, entitlement: str) -> Decimal:
        """Change of rate, units per ms², over the last three calls."""
        return meters.acceleration(self._history(id, entitlement))

    def projected_exhaustion(
        self, id: str, entitlement: str, smoothed: bool = False, grants: bool = True
    ) -> timedelta | None:
        """How long until the limit is used up at the current rate; None when not rising or nothing remains."""
        smoothed, grants = args.flag(smoothed, "smoothed"), args.flag(grants, "grants")
        call, now = self._locate(id, entitlement)
        return None if call is None else reads.projected_exhaustion(self._decider, call, now, smoothed, grants)

    def credit_exchange(self, from_credit: str, to_credit: str, value: NumberLike = 1) -> Decimal | None:
        """`value` units of `from_credit` in `to_credit`, through runes; None when there is no path."""
        amount = args.amount(value, "value")
        return exchange(self._compiled, amount, args.ident(from_credit, "credit"), args.ident(to_credit, "credit"))

    # -- grants, top-ups, plan fees ---------------------------------------------------------------------------

    def apply_customer_topup(self, id: str, topup: str) -> bool:
        """Grant one purchase of a top-up of the customer's plan (call it after payment)."""
        ident, name = args.ident(id), args.ident(topup, "topup")
        grant_id = _new_id("lgrnt_")
        return self._txn.run(
            ident, lambda at, now: grant_commands.apply_topup(self._compiled, at, now, ident, name, grant_id)
        )

    def ensure_included_topups(self, id: str) -> None:
        """Reconcile top-up grants with the customer's plan and grant missing included top-ups."""
        self._update(args.ident(id), grant_commands.reconcile_topups(self._compiled))

    def grant(
        self,
        id: str,
        credit: str,
        value: NumberLike,
        *,
        expires_on: datetime | None = None,
        grant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Grant | None:
        """Give a customer a balance of `credit` (promo credit) that covers usage past its limits until
        `expires_on`. None when the customer or credit is unknown or `grant_id` is taken."""
        ident, credit_name = args.ident(id), args.ident(credit, "credit")
        if (
            credit_name != RUNE
            and credit_name not in self._compiled.credits
            and credit_name not in self._compiled.exchange.pairs
        ):
            return None
        found = self._compiled.credits.get(credit_name)
        amount = quantity_in(found, args.quantity(value)) if found else args.amount(value, "value")
        if amount <= 0:
            raise InvalidArgumentError(f"a grant must be positive, got `{value}`")
        spec = grant_commands.GrantSpec(
            args.ident(grant_id, "grant_id") if grant_id is not None else _new_id("lgrnt_"),
            credit_name,
            amount,
            args.when(expires_on, "expires_on"),
            args.optional_data(metadata, "metadata"),
        )
        made: list[Grant] = []
        return made[-1] if self._update(ident, grant_commands.grant(spec, made)) else None

    def grants(self, id: str) -> list[Grant]:
        """The customer's grants as of now (expired ones left out, resets rolled)."""
        _, state = self._view(args.ident(id))
        return [] if state is None else list(grants_mod.make_current(state.grants, self._clock.now())[0].values())

    def credit_remaining(self, id: str, credit: str) -> Decimal | None:
        """The customer's whole grant balance expressed in `credit`; None for an unknown customer."""
        _, state = self._view(args.ident(id))
        if state is None:
            return None
        current, _ = grants_mod.make_current(state.grants, self._clock.now())
        return grants_mod.balance(self._compiled, current, args.ident(credit, "credit"), ZERO)

    def ensure_plan_subscription(self, id: str) -> bool:
        """Charge the plan fee once: increment the plan's `subscription` entitlement when its meter is below 1
        and the trial is over. Only the customer's own plan counts. Never called automatically."""
        ident = args.ident(id)
        _, state = self._view(ident)
        plan = self._compiled.plans.get(state.plan) if state else None
        if state is None or plan is None:
            return False
        meter = state.meters.get(plan.subscription)
        now = self._clock.now()
        if meter is None or meter.value >= 1 or meter.started is None:
            return False
        if plan.trial_period is not None and now - meter.started < plan.trial_period:
            return False
        return self.increment(state.id, plan.subscription)

    # -- caps -------------------------------------------------------------------------------------------------

    def add_customer_cap(
        self,
        id: str,
        value: NumberLike,
        *,
        cap_id: str | None = None,
        credit: str = "rune",
        exchangeable: bool | None = None,
        ignore_grants: bool = False,
        overage_only: bool = False,
        observe_only: bool = False,
        overhead_cost: bool = False,
        follow_decrements: bool = False,
        scope: Iterable[str] | None = None,
        resets: bool = False,
        reset_inc: DurationLike | None = None,
        reset_sch: str | None = None,
        expires_on: datetime | None = None,
        events: bool = True,
        hard_trailing: bool = False,
        shared: bool = False,
        shared_with: Iterable[str] | None = None,
    ) -> Cap | None:
        """Add a spend cap: a ceiling of `value` in `credit` (runes by default) on what the customer's calls
        consume. A `reset_inc` or `reset_sch` makes it reset on its own clock. None when the customer is unknown,
        the credit has no path to runes, `cap_id` is taken, or an exchangeable cap would price through a
        stairstep curve (no per-unit price)."""
        ident = args.ident(id)
        flags = {
            "ignore_grants": ignore_grants,
            "overage_only": overage_only,
            "observe_only": observe_only,
            "overhead_cost": overhead_cost,
            "follow_decrements": follow_decrements,
            "hard_trailing": hard_trailing,
            "shared": shared,
        }
        checked = cap_commands.spec(
            self._compiled,
            value,
            cap_id=cap_id,
            new_id=_new_id("cap_"),
            credit=credit,
            exchangeable=exchangeable,
            flags=flags,
            resets=resets,
            reset_inc=reset_inc,
            reset_sch=reset_sch,
            scope=scope,
            shared_with=shared_with,
            expires_on=expires_on,
            events=events,
        )
        if checked is None:
            return None
        return self._txn.run(ident, lambda at, now: cap_commands.add(at, now, ident, checked))

    def customer_cap(self, id: str, cap_id: str) -> Cap | None:
        """The cap as of now (a finished period shows as reset, an expired cap as None)."""
        _, state = self._view(args.ident(id))
        cap = state.caps.get(args.ident(cap_id, "cap_id")) if state else None
        return None if cap is None else caps_mod.current(cap, self._clock.now())

    def reset_customer_cap(self, id: str, cap_id: str, events: bool = True) -> bool:
        """Zero a cap's meter and start its period now."""
        return self._cap_change(id, cap_id, events, remove=False)

    def remove_customer_cap(self, id: str, cap_id: str, events: bool = True) -> bool:
        return self._cap_change(id, cap_id, events, remove=True)

    def _cap_change(self, id: str, cap_id: str, events: bool, *, remove: bool) -> bool:
        ident = args.ident(id)
        key, send = args.ident(cap_id, "cap_id"), args.flag(events, "events")
        return self._txn.run(ident, lambda at, now: cap_commands.change(at, now, ident, key, send, remove=remove))

    # -- reservations and estimates ---------------------------------------------------------------------------

    def reserve(
        self,
        id: str,
        entitlement: str,
        value: NumberLike | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        basis: NumberLike | None = None,
        segment: str | None = None,
        ttl: DurationLike | None = None,
        quantile: NumberLike = "0.9",
        overhead: NumberLike | None = None,
    ) -> str | None:
        """Hold room for a call before doing it; returns the hold id, or None when it would not be allowed.

        Without `value` the hold is the learned estimate at `quantile` (or the limit's standard increment before
        anything is learned). The hold counts against its meter's limit and caps until `settle`, `release`, or its
        TTL (`ttl`, else the policy's `hold_ttl`, 10 minutes by default) runs out.
        """
        ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
        quantity = args.quantity(value) if value is not None else None
        reservation = hold_commands.Reservation(
            ident,
            ent,
            quantity,
            args.context(context),
            args.optional_text(segment, "segment"),
            args.optional_amount(basis, "basis"),
            args.fraction(quantile, "quantile"),
            args.optional_amount(overhead, "overhead"),
            args.duration(ttl, "ttl") if ttl is not None else self._compiled.hold_ttl,
            _new_id("hold_"),
            self._policy_estimates(ent) if quantity is None else None,
        )

        def attempt(at: Attempt, now: datetime) -> str | None:
            return hold_commands.reserve(self._compiled, self._decider, at, now, reservation)

        return self._txn.run(ident, attempt)

    def settle(
        self,
        id: str,
        entitlement: str,
        hold_id: str,
        value: NumberLike = 0,
        *,
        event: EventArg = True,
        overhead: NumberLike | None = None,
        basis: NumberLike | None = None,
        segment: str | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        """Resolve a hold: drop it and record the actual usage (forced: the work already happened), then learn
        from it. A hold settles once; settling it again records nothing and returns False."""
        ident, ent, hid = args.ident(id), args.ident(entitlement, "entitlement"), args.ident(hold_id, "hold_id")
        idem_key = args.optional_ident(idempotency_key, "idempotency_key")
        segment = args.optional_text(segment, "segment")
        send, data = args.events(event)
        request = Request(
            ident, ent, args.quantity(value), 0, send, data, args.optional_amount(overhead, "overhead"), True
        )
        settlement = hold_commands.Settlement(request, hid, segment, args.optional_amount(basis, "basis"))
        learned: list[holds.Learn] = []

        def attempt(at: Attempt, now: datetime) -> bool:
            return hold_commands.settle(self._compiled, self._decider, at, now, settlement, learned)

        idem = (idem_key, args.fingerprint("settle", ident, ent, hid, request.value)) if idem_key else None
        done = self._txn.run(ident, attempt, idempotency=idem, extra=(keys.settled(ident, hid),))
        for learn in learned:
            self._learn_policy(learn)
        return done

    def release(self, id: str, entitlement: str, hold_id: str) -> bool:
        """Drop a hold without recording usage; False when there is no such hold."""
        ident, ent, hid = args.ident(id), args.ident(entitlement, "entitlement"), args.ident(hold_id, "hold_id")

        return self._txn.run(ident, lambda at, now: hold_commands.release(self._decider, at, now, ident, ent, hid))

    def held(self, id: str, entitlement: str) -> Decimal | None:
        """Units held by unexpired reservations on the meter (None for unknowns and feature flags)."""
        call, now = self._locate(id, entitlement)
        if call is None:
            return None
        return sum((h.value for h in meters.live_holds(call.meter, now).values() if h.value > 0), ZERO)

    def estimate(
        self,
        id: str,
        entitlement: str,
        *,
        basis: NumberLike | None = None,
        segment: str | None = None,
        quantile: NumberLike = "0.9",
        context: Mapping[str, Any] | None = None,
    ) -> Estimate | None:
        """The learned size of a call at `quantile`: the customer's own after `estimate_min_samples`
        observations, else every customer's; None before anything is learned (or per-basis without a basis)."""
        ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
        ctx = args.context(context)
        segment = args.optional_text(segment, "segment")
        q = args.fraction(quantile, "quantile")
        snap, _, _, _ = self._txn.snapshot(ident)
        call = self._decider.locate(snap, ident, ent, self._clock.now())
        if call is None:
            return None
        seg = hold_commands.segment_of(ctx, call, segment)
        b = hold_commands.basis_of(ctx, call, args.optional_amount(basis, "basis"))
        return hold_commands.estimate(self._compiled, call, b, seg, q, self._policy_estimates(ent))

    def observe(
        self,
        id: str,
        entitlement: str,
        value: NumberLike,
        *,
        overhead: NumberLike | None = None,
        basis: NumberLike | None = None,
        segment: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Learn from one call without a hold (customer and policy-wide estimates). False for unknowns and for a
        per-basis entitlement without a basis."""
        ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
        ctx = args.context(context)
        segment = args.optional_text(segment, "segment")
        request = Request(ident, ent, args.quantity(value), 0, False, ctx, args.optional_amount(overhead, "overhead"))
        basis_n = args.optional_amount(basis, "basis")
        learned: list[holds.Learn] = []

        def attempt(at: Attempt, now: datetime) -> bool:
            return hold_commands.observe(self._decider, at, now, request, segment, basis_n, learned)

        done = self._txn.run(ident, attempt)
        for learn in learned:
            self._learn_policy(learn)
        return done

    def _policy_estimates(self, entitlement: str) -> Any:
        """The policy-wide estimates of an entitlement (their own record, in their own group on a sharded store),
        read before a call's attempt: advisory numbers, so every retry of the call may use the same copy."""
        record = keys.estimates(entitlement)
        return self._txn.store.read([record], self._txn.estimates_group)[record].value

    def _learn_policy(self, learn: holds.Learn) -> None:
        """Policy-wide estimates are one record per entitlement shared by every customer: updated in their own
        small commit after the call's, so learning never makes metering calls conflict."""
        key = keys.estimates(learn.entitlement)
        group = self._txn.estimates_group
        for _ in self._txn.attempts(f"the policy-wide estimates of `{learn.entitlement}`"):
            record = self._txn.store.read([key], group)[key]
            table = holds.learn_policy(record.value, learn, self._clock.now())
            if self._txn.store.commit(Commit({key: record.version}, {key: table}, group=group)).ok:
                return

    # -- billing controls (Owostack, Autumn), entities, invoices --------------------------------------------

    def _require(self, ident: str, change: Callable[[CustomerState, Attempt, datetime], bool]) -> None:
        """Apply a control change; an unknown customer is an argument error (a write to nobody is a typo)."""
        if not self._update(ident, change) and self.customer(ident) is None:
            raise InvalidArgumentError(f"unknown customer `{ident}`")

    def set_feature_config(
        self, id: str, feature: str, *, overage: Any = UNSET, max_overage_units: Any = UNSET
    ) -> None:
        """Owostack: one customer's exception for one feature. `overage`: `block` (stop at the included amount)
        or `charge` (soft, billed); `max_overage_units`: most units past the included amount, the current request
        counting. `None` clears a field (back to the plan); a field left out keeps its value."""
        ident, name = args.ident(id), args.ident(feature, "feature")
        if overage is not UNSET and overage not in (None, "block", "charge"):
            raise InvalidArgumentError(f"overage must be `block`, `charge` or None, got `{overage}`")
        units = max_overage_units
        if units is not UNSET and units is not None:
            units = args.amount(units, "max_overage_units")
            if units < 0:
                raise InvalidArgumentError(f"max_overage_units cannot be negative, got `{max_overage_units}`")

        self._require(ident, lambda c, at, now: control_commands.feature_config(c, name, overage, units))

    def set_overage_limit(
        self, id: str, *, max_overage_amount: NumberLike | None, on_limit_reached: str = "block"
    ) -> None:
        """Owostack: a customer-wide cap on billable overage, in MINOR units of `policy.currency` (500_000 =
        5,000.00 USD); `block` denies overage once it is reached (the request that crosses it passes), `notify`
        only sends `limit-reached`. `None` removes it."""
        ident = args.ident(id)
        when_reached = args.one_of(on_limit_reached, ON_LIMIT_REACHED, "on_limit_reached")
        amount = None
        if max_overage_amount is not None:
            exact = args.amount(max_overage_amount, "max_overage_amount")
            if exact < 0 or exact != exact.to_integral_value():
                raise InvalidArgumentError(
                    f"max_overage_amount is a whole number of minor units, got `{max_overage_amount}`"
                )
            amount = OverageLimit(int(exact), when_reached)

        self._require(ident, lambda c, at, now: control_commands.overage_limit(c, amount))

    def billing_config(self, id: str) -> BillingConfig | None:
        """The customer's billing controls as they apply (entities: their own entries over their customer's),
        with each usage limit's usage in its current window."""
        snap, state = self._view(args.ident(id))
        if state is None:
            return None
        return controls.billing_view(self._compiled, snap.customers, state, self._clock.now())

    def update_billing_controls(
        self,
        id: str,
        *,
        entity_id: str | None = None,
        overage_allowed: Iterable[Mapping[str, Any]] | None = None,
        spend_limits: Iterable[Mapping[str, Any]] | None = None,
        usage_limits: Iterable[Mapping[str, Any]] | None = None,
        usage_alerts: Iterable[Mapping[str, Any]] | None = None,
        auto_topups: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        """Autumn: set a customer's (or with `entity_id`, an entity's) control lists. Each list given replaces
        that control's entries (an empty list clears them); a list left out (None) keeps them. Auto top-ups are
        customer-level only."""
        ident = args.ident(id)
        target = args.ident(entity_id, "entity_id") if entity_id is not None else ident
        if entity_id is not None and auto_topups is not None:
            raise InvalidArgumentError("auto_topups are customer-level only: they charge the customer's payment method")
        parsed = billing_args.controls(overage_allowed, spend_limits, usage_limits, usage_alerts, auto_topups)

        entity_of = ident if entity_id is not None else None
        self._require(target, lambda c, at, now: control_commands.lists(c, parsed, entity_of))

    def add_entity(
        self,
        id: str,
        entity_id: str,
        *,
        feature: str | None = None,
        type: str = "entity",
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Create an entity of a customer (a customer that refs it). With `feature` the entity takes one unit of
        it on the customer (a seat): when that is denied, nothing is created and the answer is False."""
        ident, ent_id = args.ident(id), args.ident(entity_id, "entity_id")
        feature = args.optional_ident(feature, "feature")
        type, label = args.text(type, "type"), args.optional_text(label, "label")
        fields = {"type": type, "label": label, "metadata": args.optional_data(metadata, "metadata")}
        events_on, probe = self._bus.active, self._probe_on()

        def attempt(at: Attempt, now: datetime) -> bool:
            return entity_commands.add(
                self._compiled, self._decider, at, now, ident, ent_id, feature, fields, events_on, probe
            )

        if self._txn.grouped:  # an entity lives with its customer
            self._txn.locate_in(ent_id, self._txn.group_for(ident) or ident)
        return self._txn.run(ident, attempt, extra=(keys.customer(ent_id),))

    def remove_entity(self, id: str, entity_id: str, *, feature: str | None = None) -> bool:
        """Delete an entity; with `feature`, give its unit back to the customer."""
        ident, ent_id = args.ident(id), args.ident(entity_id, "entity_id")
        feature = args.optional_ident(feature, "feature")
        events_on = self._bus.active

        def attempt(at: Attempt, now: datetime) -> bool:
            return entity_commands.remove(self._decider, at, now, ident, ent_id, feature, events_on)

        return self._txn.run(ident, attempt, extra=(keys.customer(ent_id),))

    def invoice(self, id: str, *, period: str | datetime = "current") -> Invoice | None:
        """The customer's invoice for its current period, the previous one, or the one containing a datetime:
        plan fee, usage / overage / included-credit / grant-credit lines for it and its entities, each rounded
        half-up to the currency's minor unit; None for an unknown customer."""
        ident = args.ident(id)
        if isinstance(period, datetime):
            which: str | datetime = args.when(period, "period")  # type: ignore[assignment]
        elif period in ("current", "previous"):
            which = period
        else:
            raise InvalidArgumentError(f"period must be `current`, `previous` or a datetime, got `{period}`")
        snap, state = self._view(ident)
        if state is None:
            return None
        members = []
        if state.entities:
            read = self._txn.store.read([keys.customer(e) for e in state.entities], self._txn.group_for(ident))
            for record in read.values():
                if record.value is not None:
                    view = {**snap.customers, record.value.id: record.value}
                    members.append((record.value, plan_for(self._compiled, view, record.value)))
        return invoices.build(self._compiled, state, self._plan_of(snap, state), members, which, self._clock.now())

    # -- margins ------------------------------------------------------------------------------------------------

    def customer_local_margin_breakdown(self, id: str) -> dict[str, Any] | None:
        """This period's revenue (overage at list price), provider cost and margin per entitlement."""
        snap, state = self._view(args.ident(id))
        if state is None:
            return None
        return margins.customer_breakdown(self._decider, snap, state, self._clock.now())

    def local_margin_breakdown(
        self, plan: str, entitlements: Mapping[str, Any], scaled: bool = True
    ) -> dict[str, Any] | None:
        """Margins of hypothetical usage on a plan: entitlement → meter value, or a mapping with `meter` and
        optionally `limit`, `credit`, `overhead`, `context`. None for an unknown plan."""
        found = self._compiled.plans.get(args.ident(plan, "plan"))
        scaled = args.flag(scaled, "scaled")
        if found is None:
            return None
        if not isinstance(entitlements, Mapping):
            raise InvalidArgumentError(
                f"entitlements must be a mapping of entitlement to usage, got `{type(entitlements).__name__}`"
            )
        return margins.plan_breakdown(self._decider, found, entitlements, scaled)

    # -- helpers used by tests and tools -------------------------------------------------------------------------

    def customer_state(self, id: str) -> CustomerState | None:
        """The stored state of a customer (a copy; changing it changes nothing)."""
        _, state = self._view(args.ident(id))
        return None if state is None else replace(state.copy(), meters={k: m.copy() for k, m in state.meters.items()})

    def reachable(self, id: str) -> list[str]:
        """Ids of every customer reachable through `id`'s refs (breadth-first)."""
        snap, state = self._view(args.ident(id))
        return [] if state is None else [c.id for c in reachable(snap.customers, state)]
