"""Grants, top-ups and the plan fee."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine import customers as ops
from limitr_py.engine import grants as grants_mod
from limitr_py.engine import requests
from limitr_py.engine.api.core import Core, new_id, replayed
from limitr_py.engine.arguments import NumberLike
from limitr_py.engine.commands import customers as customer_commands
from limitr_py.engine.commands import grants as grant_commands
from limitr_py.engine.exact import exact
from limitr_py.engine.state import ZERO, Grant
from limitr_py.engine.txn import Attempt


@exact
class Grants(Core):
    """The grant and top-up methods of `Limitr`."""

    def apply_customer_topup(self, id: str, topup: str, *, idempotency_key: str | None = None) -> bool:
        """Grant one purchase of a top-up of the customer's plan (call it after payment). A retry with
        `idempotency_key` grants nothing more and answers what the first call answered."""
        ident, name = args.ident(id), args.ident(topup, "topup")
        grant_id = new_id("lgrnt_")
        idem = requests.idempotency(idempotency_key, "apply_customer_topup", ident, name)
        return self._txn.run(
            ident,
            lambda at, now: grant_commands.apply_topup(self._compiled, at, now, ident, name, grant_id),
            idempotency=idem,
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
        idempotency_key: str | None = None,
    ) -> Grant | None:
        """Give a customer a balance of `credit` (promo credit) that covers usage past its limits until
        `expires_on`. None when the customer or credit is unknown or `grant_id` is taken. A retry with
        `idempotency_key` grants nothing more and answers the first call's grant (without a `grant_id`, a
        retry without a key would grant again)."""
        ident = args.ident(id)
        spec = grant_commands.spec(self._compiled, credit, value, expires_on, grant_id, metadata, new_id("lgrnt_"))
        if spec is None:
            return None
        # the arguments as checked, the id as given (a generated one differs on every call)
        asked = spec if grant_id is not None else replace(spec, id="")
        idem = requests.idempotency(idempotency_key, "grant", ident, asked)
        made: list[Grant] = []

        def attempt(at: Attempt, now: datetime) -> Grant | None:
            return made[-1] if customer_commands.update(at, now, ident, grant_commands.grant(spec, made)) else None

        return replayed(Grant, self._txn.run(ident, attempt, idempotency=idem))

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
