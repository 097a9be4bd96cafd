"""Metering: `allow`, `track`, `check`, `explain` and the standard increments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine import requests
from limitr_py.engine.api.core import Core
from limitr_py.engine.arguments import CapArg, EventArg, NumberLike
from limitr_py.engine.decide import Request
from limitr_py.engine.exact import exact
from limitr_py.engine.values import Decision


@exact
class Metering(Core):
    """The metering methods of `Limitr`."""

    def _metered(
        self, id: str, entitlement: str, value: NumberLike, event: EventArg, cap: CapArg, overhead: Any, force: bool
    ) -> Request:
        return requests.metered(
            id, entitlement, value, event, cap, overhead, force, cap_credits=self._cap_credits, probe=self._probe_on()
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
        request = self._metered(id, entitlement, value, event, cap, overhead, force)
        return self._meter(request, requests.idempotency(idempotency_key, *requests.metered_call("allow", request)))

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
        idempotency_key: str | None = None,
        gates: bool = True,
    ) -> Decision:
        """`allow`, returning the committed call's `Decision` instead of a bool (`.allowed` is allow's answer):
        why a metered call was denied without deciding twice (simulators, replays, the HTTP service). An unknown
        customer is a denial at gate `customer`. A retry with `idempotency_key` meters nothing and returns the
        first call's decision without its gates (`gates` is empty: they are not kept). `gates=False`: the gate,
        limit type and headroom only, without listing every gate (cheaper: what `limitr simulate` asks)."""
        request = self._metered(id, entitlement, value, event, cap, overhead, force)
        idem = requests.idempotency(idempotency_key, *requests.metered_call("allow_explained", request))
        return self._meter_explained(request, idem, args.flag(gates, "gates"))

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
        request = requests.asked(id, entitlement, value, cap, context, overhead, cap_credits=self._cap_credits)
        return self._ask(request, explain=False).allowed

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
        request = requests.asked(id, entitlement, value, cap, context, overhead, cap_credits=self._cap_credits)
        return self._ask(request).decision

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
