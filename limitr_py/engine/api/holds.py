"""Reservations (holds) and estimates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine import holds, keys, meters, requests
from limitr_py.engine.api.core import Core, new_id
from limitr_py.engine.arguments import DurationLike, EventArg, NumberLike
from limitr_py.engine.commands import holds as hold_commands
from limitr_py.engine.estimates import Estimate
from limitr_py.engine.exact import exact
from limitr_py.engine.state import ZERO
from limitr_py.engine.txn import Attempt


@exact
class Holds(Core):
    """The reservation and estimate methods of `Limitr`."""

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
        idempotency_key: str | None = None,
    ) -> str | None:
        """Hold room for a call before doing it; returns the hold id, or None when it would not be allowed.

        Without `value` the hold is the learned estimate at `quantile` (or the limit's standard increment before
        anything is learned). The hold counts against its meter's limit and caps until `settle`, `release`, or its
        TTL (`ttl`, else the policy's `hold_ttl`, 10 minutes by default) runs out. A retry with `idempotency_key`
        holds nothing more and returns the first call's hold id.
        """
        reservation = hold_commands.reservation(
            self._compiled,
            id,
            entitlement,
            value,
            context=context,
            basis=basis,
            segment=segment,
            ttl=ttl,
            quantile=quantile,
            overhead=overhead,
            hold_id=new_id("hold_"),
            shared_estimates=self._shared_estimates,
        )

        def attempt(at: Attempt, now: datetime) -> str | None:
            return hold_commands.reserve(self._compiled, self._decider, at, now, reservation)

        r = reservation
        call = ("reserve", r.customer, r.entitlement, r.quantity, r.context, r.segment, r.basis, r.quantile)
        idem = requests.idempotency(idempotency_key, *call, r.overhead, r.lifetime)
        return self._txn.run(reservation.customer, attempt, idempotency=idem)

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
        request = requests.recorded(id, entitlement, value, event, overhead)
        hid = args.ident(hold_id, "hold_id")
        basis_n, segment = args.optional_amount(basis, "basis"), args.optional_text(segment, "segment")
        settlement = hold_commands.Settlement(request, hid, segment, basis_n)
        ident = request.customer
        idem = requests.idempotency(idempotency_key, "settle", ident, request.entitlement, hid, request.value)
        learned: list[holds.Learn] = []

        def attempt(at: Attempt, now: datetime) -> bool:
            return hold_commands.settle(self._compiled, self._decider, at, now, settlement, learned)

        done = self._txn.run(ident, attempt, idempotency=idem, extra=(keys.settled(ident, hid),))
        self._learn_shared(learned)
        return done

    def release(self, id: str, entitlement: str, hold_id: str, *, idempotency_key: str | None = None) -> bool:
        """Drop a hold without recording usage; False when there is no such hold. A retry with `idempotency_key`
        returns the first call's answer (True, though the hold is gone by then)."""
        ident, ent, hid = args.ident(id), args.ident(entitlement, "entitlement"), args.ident(hold_id, "hold_id")
        idem = requests.idempotency(idempotency_key, "release", ident, ent, hid)
        return self._txn.run(
            ident, lambda at, now: hold_commands.release(self._decider, at, now, ident, ent, hid), idempotency=idem
        )

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
        return hold_commands.estimate(self._compiled, call, b, seg, q, self._shared_estimates(ent))

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
        request = requests.observed(id, entitlement, value, overhead, context)
        basis_n, segment = args.optional_amount(basis, "basis"), args.optional_text(segment, "segment")
        learned: list[holds.Learn] = []

        def attempt(at: Attempt, now: datetime) -> bool:
            return hold_commands.observe(self._decider, at, now, request, segment, basis_n, learned)

        done = self._txn.run(request.customer, attempt)
        self._learn_shared(learned)
        return done

    def _shared_estimates(self, entitlement: str) -> Any:
        """The policy-wide estimates of an entitlement, read before a call's attempt: advisory numbers, so every
        retry of the call may use the same copy."""
        return self._txn.read_shared(keys.estimates(entitlement))

    def _learn_shared(self, learned: list[holds.Learn]) -> None:
        """The policy-wide estimates learn after the call's own commit (see `Runner.update_shared`)."""
        for learn in learned:
            what = f"the policy-wide estimates of `{learn.entitlement}`"
            self._txn.update_shared(keys.estimates(learn.entitlement), self._learner(learn), what)

    def _learner(self, learn: holds.Learn) -> Callable[[Any], Any]:
        return lambda table: holds.learn_policy(table, learn, self._clock.now())
