"""Currencies and minor units: where amounts in runes become invoice cents (SPEC §2.4 `currency`, §3.1)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from 2 (everything else has cents)
_EXPONENTS = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}


def exponent(currency: str) -> int:
    """Digits after the decimal point of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(runes: Decimal, currency: str) -> int:
    """Runes (major units) → minor units, rounded half-up: the one place money is rounded (invoice lines)."""
    return int((runes * (Decimal(10) ** exponent(currency))).to_integral_value(rounding=ROUND_HALF_UP))


def from_minor(amount: int | Decimal, currency: str) -> Decimal:
    """Minor units → runes, exactly."""
    return Decimal(amount) / (Decimal(10) ** exponent(currency))
