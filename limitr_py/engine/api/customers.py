"""Customers: creating, reading, changing, deleting, exporting and restoring them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from limitr_py.compile.graph import Limit
from limitr_py.engine import arguments as args
from limitr_py.engine import controls, keys
from limitr_py.engine import customers as ops
from limitr_py.engine.api.core import Core
from limitr_py.engine.arguments import DurationLike, NumberLike
from limitr_py.engine.commands import customers as customer_commands
from limitr_py.engine.exact import exact
from limitr_py.engine.records import customer_record
from limitr_py.engine.resolve import plan_for, reachable
from limitr_py.engine.state import CustomerState
from limitr_py.engine.txn import Attempt
from limitr_py.engine.values import Customer
from limitr_py.errors import CorruptRecordError


@exact
class Customers(Core):
    """The customer methods of `Limitr`."""

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
        fields = customer_commands.fields(self._compiled, plan, type, label, refs, alt_ids, metadata)
        self._txn.place(ident, fields["refs"], fields["alt_ids"])  # a customer lives in its org's group

        def attempt(at: Attempt, now: datetime) -> Customer | None:
            return customer_commands.create(self._compiled, at, now, ident, fields)

        aliases = [keys.alias(a) for a in fields["alt_ids"]]
        return self._txn.run(ident, attempt, extra=aliases, include=fields["refs"])

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

    def set_customer_plan(self, id: str, plan: str, overwrite_meters: bool = False) -> bool:
        """Move a customer to `plan`, keeping its usage (new meters join the current period). False when the
        plan or customer is unknown or the customer is already on it."""
        ident, name = args.ident(id), args.ident(plan, "plan")
        overwrite = args.flag(overwrite_meters, "overwrite_meters")
        return self._txn.run(
            ident, lambda at, now: customer_commands.set_plan(self._compiled, at, now, ident, name, overwrite)
        )

    def set_customer_refs(self, id: str, refs: Iterable[str]) -> bool:
        """Replace a customer's refs. On a sharded store the new refs must be in the customer's group."""
        ident, refs_t = args.ident(id), args.names(refs, "refs")
        self._txn.check_refs(ident, refs_t)
        return self._update(ident, customer_commands.set_refs(refs_t))

    def set_alt_customer_id(self, id: str, alt: str) -> bool:
        """Let `alt` name the customer too. False when the customer is unknown or `alt` is taken."""
        ident, alt_id = args.ident(id), args.ident(alt, "alt id")
        if not self._txn.join(alt_id, ident):
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
        ident = args.ident(id)
        spec = customer_commands.override_spec(
            entitlement,
            expires=expires,
            credit=credit,
            mode=mode,
            value=value,
            increment=increment,
            resets=resets,
            reset_inc=reset_inc,
            reset_sch=reset_sch,
        )
        made: list[Limit] = []
        return made[-1] if self._update(ident, customer_commands.override(self._compiled, spec, made)) else None

    def remove_customer_override(self, id: str, entitlement: str) -> bool:
        ident, name = args.ident(id), args.ident(entitlement, "entitlement")
        return self._update(ident, customer_commands.remove_override(name))

    def customers(self) -> list[dict[str, Any]]:
        """Every customer's full state as JSON-safe records (numbers as strings), for export or backup."""
        return [customer_record(state) for _, state in self._txn.store.scan(keys.CUSTOMER.prefix)]

    def set_customer(self, record: Mapping[str, Any]) -> Customer:
        """Insert or replace a customer from a record of `customers()` (state restore); re-registers alt ids."""
        state = args.customer_record(record, self._compiled.plans)
        self._txn.place(state.id, state.refs, state.alt_ids)

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
        states = args.customer_records(records, self._compiled.plans)  # all checked before any is written
        for state in states:
            self.set_customer(customer_record(state))
        return len(states)

    def customer_state(self, id: str) -> CustomerState | None:
        """The stored state of a customer (a copy; changing it changes nothing)."""
        _, state = self._view(args.ident(id))
        return None if state is None else ops.detached(state)

    def customer_plan(self, id: str) -> str | None:
        """The plan a customer is on: its own, else the first ref's that has one, else the policy's default (the
        plan its limits come from); None for an unknown customer or when no plan resolves."""
        snap, state = self._view(args.ident(id))
        plan = None if state is None else plan_for(self._compiled, snap.customers, state)
        return None if plan is None else plan.name

    def reachable(self, id: str) -> list[str]:
        """Ids of every customer reachable through `id`'s refs (breadth-first)."""
        snap, state = self._view(args.ident(id))
        return [] if state is None else [c.id for c in reachable(snap.customers, state)]
