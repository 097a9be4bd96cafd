"""Invoices (SPEC §3.1): lines per rating model worked out by hand, Lumen's included credits, grant lines,
closed periods, and the invariant that overage lines equal the events' overage prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine_helpers import Engines, Recorder, limit

MONTHLY = {"mode": "soft", "resets": True, "reset_sch": "monthly:1"}
TIERS = [{"up_to": 5000, "price": {"amount": 0.08}}, {"price": {"amount": 0.05}}]
ENTS = {
    "grad": limit(10000, "email", **MONTHLY, pricing={"pricing_model": "tiered", "tiers": TIERS}),
    "vol": limit(10000, "email", **MONTHLY, pricing={"pricing_model": "volume", "tiers": TIERS}),
    "pkg": limit(
        10000, "email", **MONTHLY, pricing={"pricing_model": "package", "price": {"amount": 5}, "billing_units": 1000}
    ),
    "fees": limit(
        0,
        "email",
        **MONTHLY,
        pricing={
            "pricing_model": "tiered",
            "tiers": [
                {"up_to": 100, "price": {"amount": 1}, "flat_fee": 10},
                {"price": {"amount": 0.5}, "flat_fee": 20},
            ],
        },
    ),
    "api": limit(10000, "api_call", **MONTHLY, invoice_included=True),
}
CREDITS = {"email": {}, "api_call": {"price": {"amount": 0.05}}}


def lines(invoice: object) -> dict[tuple[str, str | None], int]:
    return {(line.kind, line.entitlement): line.amount for line in invoice.lines}  # type: ignore[attr-defined]


def test_each_rating_model_and_lumens_included_credits_on_one_invoice(engines: Engines) -> None:
    engine, clock = engines.policy(
        {}, credits=CREDITS, plans={"pro": {"label": "Pro", "price": {"amount": 30}, "entitlements": ENTS}}
    )
    engine.create_customer("c", plan="pro")
    rec = Recorder(engine)
    engine.allow("c", "grad", 18000)
    engine.allow("c", "vol", 15000)  # 5,000 past the limit: band 1 (inclusive) → 5,000 × 0.08 = 400
    engine.allow("c", "vol", 1)  # 5,001 → all of it at 0.05 = 250.05: the cliff refunds 149.95
    engine.allow("c", "pkg", 12500)
    engine.allow("c", "fees", 150)
    engine.allow("c", "api", 12000)
    vol = [
        e.payload["overage_price"]
        for e in rec.events
        if e.name == "meter-overage" and e.payload["entitlement"] == "vol"
    ]
    assert vol == [D("400.00"), D("-149.95")]
    invoice = engine.invoice("c")
    assert invoice is not None and invoice.currency == "USD"
    assert lines(invoice) == {
        ("subscription", None): 3000,
        ("overage", "grad"): 55000,  # 5,000 × 0.08 + 3,000 × 0.05 = 550.00
        ("overage", "vol"): 25005,  # 5,001 × 0.05
        ("overage", "pkg"): 1500,  # 3 started blocks of 1,000 × 5
        ("overage", "fees"): 15500,  # 100 × 1 + 10 + 50 × 0.5 + 20
        ("usage", "api"): 60000,  # 12,000 × 0.05
        ("included_credit", "api"): -50000,  # the 10,000 included, shown and credited
    }
    assert invoice.total == 110005 == sum(lines(invoice).values())
    assert invoice.period_start == datetime(2026, 3, 15, 14, 30, tzinfo=UTC)
    assert invoice.period_end == datetime(2026, 4, 1, tzinfo=UTC)

    clock.set(datetime(2026, 4, 2, tzinfo=UTC))
    engine.allow("c", "api", 1)  # starts April for `api`; the other meters have not been touched yet
    previous = engine.invoice("c", period="previous")
    assert previous is not None and previous.total == 110005
    current = engine.invoice("c")
    assert current is not None and lines(current) == {
        ("subscription", None): 3000,
        ("usage", "api"): 5,
        ("included_credit", "api"): -5,
    }
    march = engine.invoice("c", period=datetime(2026, 3, 20, tzinfo=UTC))
    assert march is not None and march.total == 110005


def test_grant_coverage_is_a_negative_line_and_lines_equal_the_overage_events(engines: Engines) -> None:
    engine, _ = engines.policy({"chat": limit(100, "tok", mode="soft")}, credits={"tok": {"price": {"amount": 0.01}}})
    engine.create_customer("c")
    engine.grant("c", "tok", 30)
    rec = Recorder(engine)
    engine.allow("c", "chat", 150)  # 50 past the limit, 30 paid by the grant
    invoice = engine.invoice("c")
    assert invoice is not None
    assert lines(invoice) == {("overage", "chat"): 50, ("grant_credit", "chat"): -30}
    grant_line = next(line for line in invoice.lines if line.kind == "grant_credit")
    assert grant_line.quantity == 30 and grant_line.unit_price == D("-0.01")
    billed = sum(e.payload["overage_price"] for e in rec.events if e.name == "meter-overage")
    assert invoice.total == int(billed * 100) == 20


# every example builds its own engine on a fresh namespace, so sharing the function-scoped fixture is safe
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.integers(1, 400), min_size=1, max_size=25), grant=st.integers(0, 300))
def test_a_periods_overage_lines_equal_the_sum_of_its_overage_prices(
    engines: Engines, calls: list[int], grant: int
) -> None:
    tiers = [
        {"up_to": 200, "price": {"amount": 0.02}},
        {"up_to": 500, "price": {"amount": 0.03}},
        {"price": {"amount": 0.01}},
    ]
    engine, _ = engines.policy(
        {"chat": limit(300, "tok", mode="soft", pricing={"pricing_model": "tiered", "tiers": tiers})},
        credits={"tok": {}},
    )
    engine.create_customer("c")
    if grant:
        engine.grant("c", "tok", grant)
    rec = Recorder(engine)
    for value in calls:
        assert engine.allow("c", "chat", value)
    billed = sum((e.payload["overage_price"] for e in rec.events if e.name == "meter-overage"), D(0))
    invoice = engine.invoice("c")
    assert invoice is not None
    overage = sum(line.amount for line in invoice.lines if line.kind in ("overage", "grant_credit"))
    assert overage == billed * 100  # every price here is whole cents, so rounding cannot hide a difference


def test_the_current_period_is_defined_by_the_meters_that_reset(engines: Engines) -> None:
    # `seats` never resets: its meter started with the customer. Before, the current invoice started then too,
    # overlapping every earlier invoice (period_start 15 March in May).
    engine, clock = engines.policy(
        {},
        credits=CREDITS,
        plans={
            "pro": {
                "price": {"amount": 30},
                "entitlements": {"api": limit(10000, "api_call", **MONTHLY), "seats": limit(5, "email")},
            }
        },
    )
    engine.create_customer("c", plan="pro")
    clock.set(datetime(2026, 5, 10, tzinfo=UTC))
    assert engine.allow("c", "api", 1) and engine.allow("c", "seats", 1)
    current, previous = engine.invoice("c"), engine.invoice("c", period="previous")
    assert current is not None and previous is not None
    assert (current.period_start, current.period_end) == (
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert previous.period_end is not None and previous.period_end <= current.period_start


def test_a_customer_whose_meters_never_reset_has_a_period_from_its_start(engines: Engines) -> None:
    engine, clock = engines.policy({}, credits=CREDITS, plans={"flat": {"entitlements": {"seats": limit(5, "email")}}})
    engine.create_customer("c", plan="flat")
    clock.set(datetime(2026, 5, 10, tzinfo=UTC))
    invoice = engine.invoice("c")
    assert invoice is not None and invoice.period_start == datetime(2026, 3, 15, 14, 30, tzinfo=UTC)
