"""Spend caps on a customer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from limitr_py.engine import arguments as args
from limitr_py.engine import caps as caps_mod
from limitr_py.engine import requests
from limitr_py.engine.api.core import Core, new_id, replayed
from limitr_py.engine.arguments import DurationLike, NumberLike
from limitr_py.engine.commands import caps as cap_commands
from limitr_py.engine.exact import exact
from limitr_py.engine.state import Cap


@exact
class Caps(Core):
    """The cap methods of `Limitr`."""

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
        idempotency_key: str | None = None,
    ) -> Cap | None:
        """Add a spend cap: a ceiling of `value` in `credit` (runes by default) on what the customer's calls
        consume. A `reset_inc` or `reset_sch` makes it reset on its own clock. None when the customer is unknown,
        the credit has no path to runes, `cap_id` is taken, or an exchangeable cap would price through a
        stairstep curve (no per-unit price). A retry with `idempotency_key` adds nothing more and answers the
        first call's cap."""
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
            new_id=new_id("cap_"),
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
        asked = checked if cap_id is not None else replace(checked, id="")  # a generated id differs every call
        idem = requests.idempotency(idempotency_key, "add_customer_cap", ident, asked)
        added = self._txn.run(ident, lambda at, now: cap_commands.add(at, now, ident, checked), idempotency=idem)
        return replayed(Cap, added)

    def customer_cap(self, id: str, cap_id: str) -> Cap | None:
        """The cap as of now (a finished period shows as reset, an expired cap as None)."""
        _, state = self._view(args.ident(id))
        cap = state.caps.get(args.ident(cap_id, "cap_id")) if state else None
        return None if cap is None else caps_mod.current(cap, self._clock.now())

    def reset_customer_cap(
        self, id: str, cap_id: str, events: bool = True, *, idempotency_key: str | None = None
    ) -> bool:
        """Zero a cap's meter and start its period now. A retry with `idempotency_key` does not reset it again
        (which would forget what was spent since)."""
        return self._cap_change(id, cap_id, events, idempotency_key, remove=False)

    def remove_customer_cap(
        self, id: str, cap_id: str, events: bool = True, *, idempotency_key: str | None = None
    ) -> bool:
        return self._cap_change(id, cap_id, events, idempotency_key, remove=True)

    def _cap_change(self, id: str, cap_id: str, events: bool, idempotency_key: str | None, *, remove: bool) -> bool:
        ident = args.ident(id)
        key, send = args.ident(cap_id, "cap_id"), args.flag(events, "events")
        idem = requests.idempotency(idempotency_key, "remove_cap" if remove else "reset_cap", ident, key, send)
        return self._txn.run(
            ident, lambda at, now: cap_commands.change(at, now, ident, key, send, remove=remove), idempotency=idem
        )
