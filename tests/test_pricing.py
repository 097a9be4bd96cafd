"""Pricing curves against reference/peers.md §2.2's worked examples, and the inverse against the forward."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from limitr_py.compile.graph import PriceTier, Pricing
from limitr_py.engine.pricing import UNBOUNDED_QUANTITY, price_of, quantity_for, total_price

TIERS = (PriceTier(D(1000), D(10)), PriceTier(D(5000), D(8)), PriceTier(None, D(5)))
FEES = (PriceTier(D(1000), D(10), D(100)), PriceTier(D(5000), D(8), D(300)), PriceTier(None, D(5), D(500)))
GRADUATED, VOLUME = Pricing("tiered", None, TIERS), Pricing("volume", None, TIERS)
PACKAGE = Pricing("package", D(200), (), D(500))


@pytest.mark.parametrize(
    ("usage", "graduated", "volume", "package"),
    [(6500, 49500, 32500, 2600), (5000, 42000, 40000, 2000), (5001, 42005, 25005, 2200), (6501, 49505, 32505, 2800)],
)
def test_worked_examples(usage: int, graduated: int, volume: int, package: int) -> None:
    assert total_price(GRADUATED, D(usage)) == graduated
    assert total_price(VOLUME, D(usage)) == volume
    assert total_price(PACKAGE, D(usage)) == package


def test_flat_fees_graduated_adds_every_entered_tier_volume_only_its_own() -> None:
    assert total_price(Pricing("tiered", None, FEES), D(6500)) == 50400
    assert total_price(Pricing("volume", None, FEES), D(6500)) == 33000
    assert total_price(Pricing("tiered", None, FEES), D(0)) == 0  # zero usage enters no tier


def test_stairstep_charges_the_band_price() -> None:
    steps = Pricing("stairstep", None, (PriceTier(D(10), D(5)), PriceTier(None, D(20))))
    assert [total_price(steps, D(n)) for n in (0, 1, 10, 11)] == [0, 5, 5, 20]
    assert price_of(steps, D(1), D(10)) == 15


def test_negative_positions_are_priced_at_the_first_rate_and_refunds_mirror_charges() -> None:
    assert price_of(GRADUATED, D(3), D(-2)) == 10 * (-2 + 3) - 10 * (-2)
    assert price_of(GRADUATED, D(-100), D(1050)) == -price_of(GRADUATED, D(100), D(950))


def test_quantity_for_stops_before_an_unaffordable_band_and_free_bands_are_unbounded() -> None:
    assert quantity_for(GRADUATED, D(10000)) == 1000
    assert quantity_for(GRADUATED, D(10008)) == 1001
    free_tail = Pricing("tiered", None, (PriceTier(D(10), D(1)), PriceTier(None, D(0))))
    assert quantity_for(free_tail, D(10)) == UNBOUNDED_QUANTITY
    assert quantity_for(PACKAGE, D(399)) == 500  # one 200 block; the second is not affordable
    assert quantity_for(Pricing("stairstep", None, (PriceTier(None, D(5)),)), D(-1)) is None


@given(start=st.integers(0, 8000).map(D), runes=st.integers(1, 60000).map(D))
def test_quantity_for_buys_exactly_what_the_runes_pay_for_on_graduated_curves(start: D, runes: D) -> None:
    bought = quantity_for(GRADUATED, runes, start)
    assert bought is not None and bought > 0
    assert price_of(GRADUATED, bought, start) == runes  # graduated curves are continuous: nothing left over
