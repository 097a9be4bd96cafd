"""The state every part of the engine shares and the steps every public call is made of."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Self, TypeVar

from limitr_py.clock import Clock, SystemClock
from limitr_py.compile.graph import CompiledPolicy
from limitr_py.engine import arguments as args
from limitr_py.engine import requests
from limitr_py.engine.arguments import CapArg, EventArg
from limitr_py.engine.commands import customers as customer_commands
from limitr_py.engine.commands import metering
from limitr_py.engine.decide import Call, Decider, Outcome, OverheadFn, Request, Snapshot
from limitr_py.engine.events import EventBus, Handler
from limitr_py.engine.exact import exact
from limitr_py.engine.exchange import RUNE
from limitr_py.engine.records import Decoder
from limitr_py.engine.resolve import resolve_customer
from limitr_py.engine.state import CustomerState
from limitr_py.engine.txn import Attempt, Runner
from limitr_py.engine.values import Decision
from limitr_py.errors import InvalidArgumentError
from limitr_py.stores.base import Store

T = TypeVar("T")


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


def replayed(cls: type[T], result: Any) -> T | None:
    """A call's result as `cls`: a replay with an idempotency key on a text store answers the recorded result
    decoded from its JSON (on a memory store, the object itself)."""
    if result is None or isinstance(result, cls):
        return result
    return Decoder("(an idempotent call's recorded result)").obj(cls, result, "result")


@exact
class Core:
    """A compiled policy on a store, a clock and the event bus: what every public method works with."""

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

    @property
    def conflicts_retried(self) -> int:
        """How many times a call was attempted again after a conflict, since this engine was made (a metric)."""
        return self._txn.retried

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

    def on(self, name: str, handler: Handler) -> None:
        """Call `handler(event)` for every event named `name` (an event name, a notification name, or "*")."""
        self._bus.on(name, handler)

    def off(self, name: str, handler: Handler | None = None) -> None:
        """Remove one handler, or every handler of `name`."""
        self._bus.off(name, handler)

    def _probe_on(self) -> bool:
        """Whether `limit-reached` transitions are worth working out: someone listens for them."""
        return self._bus.listens("limit-reached")

    def deliver_pending(self, limit: int = 1000) -> int:
        """Give events committed but not acknowledged (a process died between its commit and its handlers) to
        the handlers registered now that still owe them; returns how many events were handled. Call it when a
        worker starts."""
        return self._txn.deliver_pending(args.count(limit, "limit", 1, 100_000))

    def wait_for_outbox(self, timeout: float) -> bool:
        """Block until a commit of this engine owed background work (a webhook delivery, history), or `timeout`
        seconds passed: what a dispatcher waits on between rounds. True when one did."""
        signal = self._bus.background_work
        got = signal.wait(timeout)
        signal.clear()
        return got

    def _view(self, ident: str) -> tuple[Snapshot, CustomerState | None]:
        snap, _, _, _ = self._txn.snapshot(ident)
        return snap, resolve_customer(snap.customers, snap.aliases, ident)

    def _update(self, ident: str, change: customer_commands.Change) -> bool:
        """Apply `change` to a copy of the customer; write it and send `customer-set` when it returns True."""
        return self._txn.run(ident, lambda at, now: customer_commands.update(at, now, ident, change))

    def _meter(self, request: Request, idem: tuple[str, str] | None) -> bool:
        def attempt(at: Attempt, now: datetime) -> bool:
            return metering.meter(self._decider, at, now, request, None)

        return self._txn.run(request.customer, attempt, idempotency=idem)

    def _meter_explained(self, request: Request, idem: tuple[str, str] | None, gates: bool = True) -> Decision:
        """`_meter` answering the call's Decision. With an idempotency key its summary is what is recorded, so a
        replay answers it too (as a Decision without gates)."""
        made: dict[str, Any] = {}

        def attempt(at: Attempt, now: datetime) -> dict[str, Any]:
            decisions: list[Decision] = []
            allowed = metering.meter(self._decider, at, now, request, decisions, gates)
            d = decisions[0] if decisions else Decision(allowed, "unknown", None, None, ())
            answer = {"allowed": allowed, "gate": d.gate, "limit_type": d.limit_type, "headroom": d.headroom}
            made.update(decision=d, answer=answer)
            return answer

        result = self._txn.run(request.customer, attempt, idempotency=idem)
        if made and result is made["answer"]:
            decision: Decision = made["decision"]
            return decision
        headroom = result.get("headroom")  # a replay: as recorded (durable stores keep numbers as text)
        return Decision(
            bool(result["allowed"]),
            str(result["gate"]),
            result.get("limit_type"),
            None if headroom is None else Decimal(str(headroom)),
            (),
        )

    def _ask(self, request: Request, explain: bool = True) -> Outcome:
        """The decision of a call that writes nothing; `explain`: with every gate listed."""
        snap, _, _, _ = self._txn.snapshot(request.customer)
        return self._decider.check(snap, request, self._clock.now(), explain)

    def _step(self, id: str, entitlement: str, step: int, event: EventArg, write: bool, cap: CapArg) -> bool:
        probe = write and self._probe_on()
        request = requests.stepped(id, entitlement, step, event, cap, cap_credits=self._cap_credits, probe=probe)
        return self._meter(request, None) if write else self._ask(request, explain=False).allowed

    def _locate(self, id: str, entitlement: str) -> tuple[Call | None, datetime]:
        """The resolved meter of a read (None for unknowns and feature flags) and the time it was read at."""
        ident = args.ident(id)
        args.ident(entitlement, "entitlement")
        snap, _, _, _ = self._txn.snapshot(ident)
        now = self._clock.now()
        call = self._decider.locate(snap, ident, entitlement, now)
        return call, now
