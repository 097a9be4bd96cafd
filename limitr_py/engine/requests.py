"""The arguments of the metering calls checked into the `Request` the decision takes: `allow` (and `track`),
`increment`/`decrement`, `check`/`explain`, `settle` and `observe`; and what an idempotency key is bound to.

Every argument is checked here, before the call reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine.arguments import CapArg, EventArg, NumberLike
from limitr_py.engine.decide import Request


def metered(
    id: str,
    entitlement: str,
    value: NumberLike,
    event: EventArg,
    cap: CapArg,
    overhead: NumberLike | None,
    force: bool,
    *,
    cap_credits: Collection[str],
    probe: bool,
) -> Request:
    """`allow` / `allow_explained` / `track`."""
    ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
    send, data = args.events(event)
    quantity = args.quantity(value)
    cost = args.optional_amount(overhead, "overhead")
    forced = args.flag(force, "force")
    return Request(ident, ent, quantity, 0, send, data, cost, forced, args.call_caps(cap, cap_credits), probe)


def stepped(
    id: str, entitlement: str, step: int, event: EventArg, cap: CapArg, *, cap_credits: Collection[str], probe: bool
) -> Request:
    """`increment` / `decrement` (`step` ±1: the limit's standard increment), and their checks."""
    ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
    send, data = args.events(event)
    return Request(ident, ent, None, step, send, data, caps=args.call_caps(cap, cap_credits), probe=probe)


def asked(
    id: str,
    entitlement: str,
    value: NumberLike,
    cap: CapArg,
    context: Mapping[str, Any] | None,
    overhead: NumberLike | None,
    *,
    cap_credits: Collection[str],
) -> Request:
    """`check` / `explain`: no events, nothing written."""
    ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
    quantity, ctx = args.quantity(value), args.context(context)
    cost = args.optional_amount(overhead, "overhead")
    return Request(ident, ent, quantity, 0, False, ctx, cost, caps=args.call_caps(cap, cap_credits))


def recorded(id: str, entitlement: str, value: NumberLike, event: EventArg, overhead: NumberLike | None) -> Request:
    """`settle`'s usage: forced, because the work already happened."""
    ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
    send, data = args.events(event)
    return Request(ident, ent, args.quantity(value), 0, send, data, args.optional_amount(overhead, "overhead"), True)


def observed(
    id: str, entitlement: str, value: NumberLike, overhead: NumberLike | None, context: Mapping[str, Any] | None
) -> Request:
    """`observe`: a call learned from, never metered."""
    ident, ent = args.ident(id), args.ident(entitlement, "entitlement")
    quantity, ctx = args.quantity(value), args.context(context)
    return Request(ident, ent, quantity, 0, False, ctx, args.optional_amount(overhead, "overhead"))


def idempotency(key: str | None, *call: Any) -> tuple[str, str] | None:
    """(key, fingerprint of the call's name and arguments): a retry with the key and other arguments is refused."""
    return None if key is None else (args.ident(key, "idempotency_key"), args.fingerprint(*call))


def metered_call(op: str, r: Request) -> tuple[Any, ...]:
    """What a metering call's idempotency key is bound to."""
    return (op, r.customer, r.entitlement, r.value, r.step, r.force, r.overhead, r.send_events)
