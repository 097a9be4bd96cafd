"""Grants, top-ups and the plan fee."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine import customers as ops
from limitr_py.engine import grants as grants_mod
from limitr_py.engine.api.core import Core, new_id
from limitr_py.engine.arguments import NumberLike
from limitr_py.engine.commands import grants as grant_commands
from limitr_py.engine.exact import exact
from limitr_py.engine.state import ZERO, Grant


@exact
class Grants(Core):
    """The grant and top-up methods of `Limitr`."""

    def apply_customer_topup(self, id: str, topup: str) -> bool:
        """Grant one purchase of a top-up of the customer's plan (call it after payment)."""
        ident, name = args.ident(id), args.ident(topup, "topup")
        grant_id = new_id("lgrnt_")
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
        ident = args.ident(id)
        spec = grant_commands.spec(self._compiled, credit, value, expires_on, grant_id, metadata, new_id("lgrnt_"))
        made: list[Grant] = []
        return made[-1] if spec is not None and self._update(ident, grant_commands.grant(spec, made)) else None

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
        _, state = self._view(args.ident(id))
        due = ops.plan_fee_due(self._compiled, state, self._clock.now()) if state else None
        return state is not None and due is not None and self._step(state.id, due, 1, True, True, None)
