"""Pricing math: units ↔ runes on a credit's curve (reference/limitr.md §2.3, reference/peers.md §2).

Coordinates are *billable* units: 0 is the first unit past the included amount; negative positions are still
inside it (priced at the first tier's rate, which only caps converting in-plan usage ever see). Bands are
`(previous up_to, up_to]`, so `up_to` is inclusive. A tier's `flat_fee` is charged when the quantity enters the
tier: zero usage enters no tier and costs nothing (Owostack's rule; peers disagree, see peers.md §2.2).

Every function is exact Decimal arithmetic; nothing here rounds.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from limitr_py.compile.graph import PriceTier, Pricing

ZERO = Decimal(0)
UNBOUNDED_QUANTITY = Decimal("1e15")
"""What `quantity_for` answers when runes buy without end (a free last band), as Limitr does."""


def _blocks(n: Decimal, size: Decimal) -> Decimal:
    return (n / size).to_integral_value(rounding=ROUND_CEILING)


def first_rate(p: Pricing) -> Decimal:
    """Runes per unit at the start of the curve (used for negative positions)."""
    if p.model == "flat":
        return p.price or ZERO
    if p.model == "package":
        return (p.price or ZERO) / (p.billing_units or Decimal(1))
    if p.model == "stairstep" or not p.tiers:
        return ZERO
    return p.tiers[0].amount


def _band(p: Pricing, n: Decimal) -> int:
    for i, tier in enumerate(p.tiers):
        if tier.up_to is None or n <= tier.up_to:
            return i
    return len(p.tiers) - 1


def total_price(p: Pricing, n: Decimal) -> Decimal:
    """Runes for the first `n` billable units (cumulative from 0)."""
    model = p.model
    if model == "flat":
        return n * (p.price or ZERO)
    if n <= 0:
        return ZERO if model == "stairstep" else n * first_rate(p)
    if model == "package":
        return _blocks(n, p.billing_units or Decimal(1)) * (p.price or ZERO)
    if not p.tiers:
        return ZERO
    if model == "tiered":  # graduated: each band's units at its rate, plus the fee of every band entered
        total, lower = ZERO, ZERO
        for tier in p.tiers:
            if n <= lower:
                break
            upper = n if tier.up_to is None else min(n, tier.up_to)
            total += (upper - lower) * tier.amount + tier.flat_fee
            lower = upper if tier.up_to is None else tier.up_to
        return total
    tier = p.tiers[_band(p, n)]
    if model == "volume":  # every unit at the rate of the band the total falls in
        return n * tier.amount + tier.flat_fee
    return tier.amount + tier.flat_fee  # stairstep: the band's price


def price_of(p: Pricing, quantity: Decimal, offset: Decimal = ZERO) -> Decimal:
    """Marginal runes for `quantity` units starting at billable position `offset` (negative = a refund).

    Volume can be negative when a call crosses into a cheaper band: that is the curve, not a bug.
    """
    if p.model == "flat":
        return quantity * (p.price or ZERO)
    return total_price(p, offset + quantity) - total_price(p, offset)


def quantity_for(p: Pricing, runes: Decimal, offset: Decimal = ZERO) -> Decimal | None:
    """Inverse of `price_of`: the most units `runes` buy from `offset` (None when the curve cannot answer).

    Walks the bands forward and never enters one whose entry cost cannot be afforded (volume: repricing
    everything so far; stairstep: the band's price minus what was paid). A free unbounded band answers
    UNBOUNDED_QUANTITY. Negative runes convert linearly at the first rate (None for stairstep).
    """
    if runes == 0:
        return ZERO
    if runes < 0:
        rate = first_rate(p)
        return None if p.model == "stairstep" or rate == 0 else runes / rate
    if p.model == "flat":
        return UNBOUNDED_QUANTITY if not p.price else runes / p.price
    if p.model == "package":
        size, price = p.billing_units or Decimal(1), p.price or ZERO
        if price == 0:
            return UNBOUNDED_QUANTITY
        start = max(offset, ZERO)
        paid_blocks = _blocks(start, size)
        more = (runes / price).to_integral_value(rounding=ROUND_FLOOR)
        return (paid_blocks + more) * size - offset
    if not p.tiers:
        return UNBOUNDED_QUANTITY
    budget = total_price(p, offset) + runes  # the highest total we can reach
    reached = offset
    lower = ZERO
    for tier in p.tiers:
        upper = tier.up_to
        if upper is not None and upper <= reached:
            lower = upper
            continue
        lo = max(lower, reached)
        # inside this band the total is linear: total(n) = total(lo⁺) + slope·(n − lo)
        slope = tier.amount if p.model in ("tiered", "volume") else ZERO
        entry = _entry_total(p, tier, lo, lower)
        if entry > budget:
            break
        if slope == 0:
            if upper is None:
                return UNBOUNDED_QUANTITY
            reached = upper
        else:
            best = lo + (budget - entry) / slope
            if upper is None or best < upper:
                return best - offset
            reached = upper
        lower = upper if upper is not None else lower
    return reached - offset


def _entry_total(p: Pricing, tier: PriceTier, lo: Decimal, band_lower: Decimal) -> Decimal:
    """The total price just as the quantity is at `lo` inside `tier` (fees of a newly entered band included)."""
    if p.model == "tiered":
        entered_now = lo == band_lower  # standing on the band's lower edge: entering it costs its fee
        return total_price(p, lo) + (tier.flat_fee if entered_now else ZERO)
    if p.model == "volume":
        return lo * tier.amount + tier.flat_fee
    return tier.amount + tier.flat_fee  # stairstep
