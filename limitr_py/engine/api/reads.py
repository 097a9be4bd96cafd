"""Reads of one meter: usage, what is left, the limit, the allowance, resets, rates; credit exchange."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from limitr_py.engine import arguments as args
from limitr_py.engine import meters, reads
from limitr_py.engine.api.core import Core
from limitr_py.engine.arguments import NumberLike
from limitr_py.engine.exact import exact
from limitr_py.engine.exchange import exchange


@exact
class Reads(Core):
    """The read methods of `Limitr`."""

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
            return reads.plan_limit(plan, args.ident(entitlement, "entitlement"))
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
            return reads.plan_cost(plan, args.ident(entitlement, "entitlement"))
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
