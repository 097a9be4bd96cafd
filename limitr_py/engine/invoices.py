"""Invoices (SPEC §3.1, seeds 000–002): plan fee, usage and overage lines priced by each entitlement's rating
model from the tier position, Lumen's included-credit lines, grant coverage as negative lines.

Amounts accumulate exactly (Decimal runes) on the meter as calls commit — `billed` is the list price of the
billable units each call added, `covered` the part grants paid for — so an invoice never re-prices usage, and a
period's overage lines always equal the sum of its `meter-overage` events' `overage_price`. Each line is rounded
half-up to the currency's minor unit; the total is the sum of the rounded lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from limitr_py import money
from limitr_py.compile.graph import CompiledPolicy, Limit, Plan
from limitr_py.engine import meters
from limitr_py.engine.pricing import first_rate
from limitr_py.engine.resolve import plan_for
from limitr_py.engine.state import ZERO, ClosedPeriod, CustomerState
from limitr_py.engine.values import Invoice, InvoiceLine


@dataclass(frozen=True, slots=True)
class Usage:
    """One entitlement's usage in the invoiced period."""

    entitlement: str
    start: datetime | None
    end: datetime | None
    value: Decimal
    billed: Decimal
    covered: Decimal
    covered_units: Decimal


def periods_of(state: CustomerState, plan: Plan, which: str | datetime, now: datetime) -> list[Usage]:
    """Each metered entitlement's period: the current one, the one before, or the one containing an instant."""
    out = []
    for name, m in state.meters.items():
        ent = plan.entitlements.get(name)
        limit = ent.limit if ent is not None else None
        if limit is None:
            continue
        pending = meters.reset_pending(limit, m, now)
        end = meters.next_reset(limit, m, pending or now) if limit.resets else None
        live = (
            Usage(name, pending or m.started, end, ZERO, ZERO, ZERO, ZERO)
            if pending
            else Usage(name, m.started, end, m.value, m.billed, m.covered, m.covered_units)
        )
        stale = Usage(name, m.started, pending, m.value, m.billed, m.covered, m.covered_units) if pending else None
        archived = [_usage(p) for p in state.periods if p.entitlement == name]
        history = [*archived, *([stale] if stale else [])]
        if which == "current":
            out.append(live)
        elif which == "previous":
            if history:
                out.append(history[-1])
        else:
            assert isinstance(which, datetime)
            found = next(
                (
                    u
                    for u in reversed([*history, live])
                    if u.start is not None and u.start <= which and (u.end is None or which < u.end)
                ),
                None,
            )
            if found is not None:
                out.append(found)
    return out


def _usage(p: ClosedPeriod) -> Usage:
    return Usage(p.entitlement, p.start, p.end, p.value, p.billed, p.covered, p.covered_units)


def lines_for(policy: CompiledPolicy, plan: Plan, usage: Usage, limit: Limit, who: str) -> list[InvoiceLine]:
    currency = policy.currency
    credit = policy.credits[limit.credit]
    pricing = limit.pricing if limit.pricing is not None and limit.pricing.priced else credit.pricing
    suffix = f" ({who})" if who else ""
    lines = []
    billable = max(ZERO, usage.value - limit.value)
    if limit.invoice_included and pricing.priced:
        rate = first_rate(pricing)
        included = min(max(ZERO, usage.value), limit.value)
        lines.append(
            InvoiceLine(
                "usage",
                usage.entitlement,
                f"{usage.entitlement} usage{suffix}",
                usage.value,
                rate,
                money.to_minor(included * rate + usage.billed, currency),
            )
        )
        if included > 0:
            lines.append(
                InvoiceLine(
                    "included_credit",
                    usage.entitlement,
                    f"{usage.entitlement} included{suffix}",
                    included,
                    -rate,
                    -money.to_minor(included * rate, currency),
                )
            )
    elif usage.billed != 0 or billable > 0:
        unit = usage.billed / billable if billable else ZERO
        lines.append(
            InvoiceLine(
                "overage",
                usage.entitlement,
                f"{usage.entitlement} overage{suffix}",
                billable,
                unit,
                money.to_minor(usage.billed, currency),
            )
        )
    if usage.covered != 0:
        unit = usage.covered / usage.covered_units if usage.covered_units else ZERO
        lines.append(
            InvoiceLine(
                "grant_credit",
                usage.entitlement,
                f"{usage.entitlement} paid by credits{suffix}",
                usage.covered_units,
                -unit,
                -money.to_minor(usage.covered, currency),
            )
        )
    return lines


def build(
    policy: CompiledPolicy,
    customer: CustomerState,
    plan: Plan | None,
    members: Iterable[tuple[CustomerState, Plan | None]],
    which: str | datetime,
    now: datetime,
) -> Invoice:
    """The invoice of `customer` (and of its entities, `members`) for the chosen period."""
    lines: list[InvoiceLine] = []
    starts: list[datetime] = []  # of meters that reset: they define the period
    lasting: list[datetime] = []  # of meters that never reset: the period only when nothing resets
    ends: list[datetime] = []
    for state, member_plan in [(customer, plan), *members]:
        if member_plan is None:
            continue
        for usage in periods_of(state, member_plan, which, now):
            limit = member_plan.entitlements[usage.entitlement].limit
            assert limit is not None
            lines.extend(lines_for(policy, member_plan, usage, limit, "" if state is customer else state.id))
            if usage.start is not None:
                (starts if limit.resets else lasting).append(usage.start)
            if usage.end is not None:
                ends.append(usage.end)
    # a meter that never resets started when the customer did: counting it would stretch the current period
    # back over the previous ones
    starts = starts or lasting
    # the plan fee belongs to a period that exists: the current one, or a past one with usage on record
    if plan is not None and plan.price and customer.parent is None and (which == "current" or starts):
        lines.insert(
            0,
            InvoiceLine(
                "subscription",
                None,
                f"{plan.label or plan.name} plan",
                Decimal(1),
                plan.price,
                money.to_minor(plan.price, policy.currency),
            ),
        )
    return Invoice(
        customer.id,
        policy.currency,
        min(starts) if starts else None,
        max(ends) if ends else None,
        tuple(lines),
        sum(line.amount for line in lines),
    )


def of_customer(
    policy: CompiledPolicy,
    customers: Mapping[str, CustomerState],
    customer: CustomerState,
    members: Iterable[CustomerState],
    which: str | datetime,
    now: datetime,
) -> Invoice:
    """`build` with each plan resolved: the customer's through the customers it reaches, each entity's through
    its customer."""
    plan = plan_for(policy, customers, customer)
    return build(
        policy, customer, plan, [(m, plan_for(policy, {**customers, m.id: m}, m)) for m in members], which, now
    )
