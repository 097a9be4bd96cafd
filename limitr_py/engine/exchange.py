"""Credit exchange with runes as the hub (reference/limitr.md §2.9).

`1 <pair key> = value <pair currency>`; chains are followed until `rune`, or until a priced credit, which is then
priced on its own curve. Pairs take precedence over a credit's own price.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from limitr_py.compile.graph import CompiledPolicy, Pricing
from limitr_py.engine.pricing import ZERO, price_of, quantity_for

RUNE = "rune"


def names_a_credit(policy: CompiledPolicy, name: str) -> bool:
    """Whether `name` is something amounts can be held in: runes, a credit, or an exchange pair's credit."""
    return name == RUNE or name in policy.credits or name in policy.exchange.pairs


@lru_cache(maxsize=4096)
def resolve(policy: CompiledPolicy, credit: str) -> tuple[Decimal, Pricing | None] | None:
    """(factor, pricing): `units × factor` are runes (pricing None) or units of a priced credit; None = no path."""
    factor, name, seen = Decimal(1), credit, set()
    while name != RUNE:
        if name in seen:
            return None
        seen.add(name)
        pair = policy.exchange.pairs.get(name)
        if pair is not None:
            factor *= pair.value
            name = pair.currency
            continue
        found = policy.credits.get(name)
        if found is not None and found.pricing.priced:
            return factor, found.pricing
        return None
    return factor, None


def to_runes(
    policy: CompiledPolicy, value: Decimal, credit: str, offset: Decimal = ZERO, pricing: Pricing | None = None
) -> Decimal | None:
    """Runes worth `value` units of `credit` from billable position `offset`; None when there is no path.

    `pricing` (a limit's own overage pricing) replaces the credit's curve when the credit has no exchange pair.
    """
    if credit == RUNE:
        return value
    if pricing is not None and credit not in policy.exchange.pairs:
        return price_of(pricing, value, offset)
    path = resolve(policy, credit)
    if path is None:
        return None
    factor, curve = path
    return value * factor if curve is None else price_of(curve, value * factor, offset * factor)


def from_runes(policy: CompiledPolicy, runes: Decimal, credit: str, offset: Decimal = ZERO) -> Decimal | None:
    """Units of `credit` that `runes` buy from billable position `offset`; None when there is no path."""
    if credit == RUNE:
        return runes
    path = resolve(policy, credit)
    if path is None:
        return None
    factor, curve = path
    if factor == 0:
        return None
    if curve is None:
        return runes / factor
    bought = quantity_for(curve, runes, offset * factor)
    return None if bought is None else bought / factor


def exchange(
    policy: CompiledPolicy,
    value: Decimal,
    source: str,
    target: str,
    source_offset: Decimal = ZERO,
    target_offset: Decimal = ZERO,
) -> Decimal | None:
    """`value` units of `source` expressed in `target` through runes (identity for the same credit)."""
    if source == target:
        return value
    runes = to_runes(policy, value, source, source_offset)
    return None if runes is None else from_runes(policy, runes, target, target_offset)
