"""The seeds' billing controls (Owostack, Autumn), entities, invoices and margins."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine import billing_args, controls, invoices, keys, margins
from limitr_py.engine.api.core import Core
from limitr_py.engine.arguments import UNSET, NumberLike
from limitr_py.engine.commands import controls as control_commands
from limitr_py.engine.commands import entities as entity_commands
from limitr_py.engine.exact import exact
from limitr_py.engine.state import CustomerState
from limitr_py.engine.txn import Attempt
from limitr_py.engine.values import BillingConfig, Invoice
from limitr_py.errors import InvalidArgumentError


@exact
class Billing(Core):
    """The billing-control, entity, invoice and margin methods of `Limitr`."""

    def _require(self, ident: str, change: Callable[[CustomerState, Attempt, datetime], bool]) -> None:
        """Apply a control change; an unknown customer is an argument error (a write to nobody is a typo)."""
        if not self._update(ident, change) and self._view(ident)[1] is None:
            raise InvalidArgumentError(f"unknown customer `{ident}`")

    def set_feature_config(
        self, id: str, feature: str, *, overage: Any = UNSET, max_overage_units: Any = UNSET
    ) -> None:
        """Owostack: one customer's exception for one feature. `overage`: `block` (stop at the included amount)
        or `charge` (soft, billed); `max_overage_units`: most units past the included amount, the current request
        counting. `None` clears a field (back to the plan); a field left out keeps its value."""
        ident, name = args.ident(id), args.ident(feature, "feature")
        overage, units = control_commands.feature_config_args(overage, max_overage_units)
        self._require(ident, lambda c, at, now: control_commands.feature_config(c, name, overage, units))

    def set_overage_limit(
        self, id: str, *, max_overage_amount: NumberLike | None, on_limit_reached: str = "block"
    ) -> None:
        """Owostack: a customer-wide cap on billable overage, in MINOR units of `policy.currency` (500_000 =
        5,000.00 USD); `block` denies overage once it is reached (the request that crosses it passes), `notify`
        only sends `limit-reached`. `None` removes it."""
        ident = args.ident(id)
        amount = control_commands.overage_limit_arg(max_overage_amount, on_limit_reached)
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

        if not self._txn.join(ent_id, ident):  # an entity lives with its customer
            return False
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
        ident, which = args.ident(id), args.period(period)
        snap, state = self._view(ident)
        if state is None:
            return None
        members = self._txn.members(ident, state.entities) if state.entities else []
        return invoices.of_customer(self._compiled, snap.customers, state, members, which, self._clock.now())

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
        return None if found is None else margins.plan_breakdown(self._decider, found, entitlements, scaled)
