"""Exact unit quantities (`1GB`, `10MiB`, `30days`, `'250MB'`) per reference/stof.md §5.

Every factor is an exact Decimal ratio to its dimension's base unit, so `10MiB` is exactly 10.48576 MB and
`30days` exactly 2,592,000,000 ms. Conversions never pass through binary floating point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from limitr_py import bounds

_K = Decimal(1000)
_Ki = Decimal(1024)


def _table() -> dict[str, tuple[str, Decimal, str]]:
    """spelling → (dimension, factor to the base unit, canonical spelling)."""
    t: dict[str, tuple[str, Decimal, str]] = {}

    def add(dim: str, factor: Decimal, canonical: str, *spellings: str) -> None:
        for s in (canonical, *spellings):
            t[s] = (dim, factor, canonical)

    # time, base = second
    add("time", Decimal(86400), "days", "day")
    add("time", Decimal(3600), "hr", "hours")
    add("time", Decimal(60), "min", "minutes")
    add("time", Decimal(1), "s", "seconds")
    add("time", Decimal("0.001"), "ms", "milliseconds")
    add("time", Decimal("0.000001"), "us", "microseconds")
    add("time", Decimal("0.000000001"), "ns", "nanoseconds")
    # memory, base = byte
    decimal_sizes = ["kilo", "mega", "giga", "tera", "peta", "exa", "zetta", "yotta"]
    binary_sizes = ["kibi", "mebi", "gibi", "tebi", "pebi", "exbi", "zebi", "yobi"]
    for i, (prefix, letter) in enumerate(zip(decimal_sizes, "KMGTPEZY", strict=True), start=1):
        add("memory", _K**i, f"{letter}B", f"{prefix}bytes")
    for i, (prefix, letter) in enumerate(zip(binary_sizes, "KMGTPEZY", strict=True), start=1):
        add("memory", _Ki**i, f"{letter}iB", f"{prefix}bytes")
    add("memory", Decimal(1), "bytes", "byte")
    add("memory", Decimal("0.125"), "bits", "bit")
    # length, base = meter
    for canonical, long, exp in [
        ("km", "kilometers", 3),
        ("hm", "hectometers", 2),
        ("dcm", "decameters", 1),
        ("m", "meters", 0),
        ("dm", "decimeters", -1),
        ("cm", "centimeters", -2),
        ("mm", "millimeters", -3),
        ("um", "micrometers", -6),
        ("nm", "nanometers", -9),
    ]:
        add("length", Decimal(10) ** exp, canonical, long)
    add("length", Decimal("1609.344"), "mi", "miles")
    add("length", Decimal("0.9144"), "yd", "yards")
    add("length", Decimal("0.3048"), "ft", "feet")
    add("length", Decimal("0.0254"), "in", "inches")
    # mass, base = gram
    for canonical, long, exp in [
        ("Gt", "gigatonnes", 15),
        ("Mt", "megatonnes", 12),
        ("t", "tonnes", 6),
        ("kg", "kilograms", 3),
        ("g", "grams", 0),
        ("mg", "milligrams", -3),
        ("ug", "micrograms", -6),
        ("ng", "nanograms", -9),
        ("pg", "picograms", -12),
    ]:
        add("mass", Decimal(10) ** exp, canonical, long)
    add("mass", Decimal("907184.74"), "Ton", "tons")
    add("mass", Decimal("453.59237"), "lb", "lbs")
    add("mass", Decimal("453.59237") / 16, "oz", "ounces")
    # temperature and angle convert only to themselves here (offsets and pi have no exact Decimal form)
    for canonical, long in [("K", "kelvin"), ("C", "celsius"), ("F", "fahrenheit")]:
        add(f"temperature:{canonical}", Decimal(1), canonical, long)
    for canonical, long in [("rad", "radians"), ("deg", "degrees"), ("prad", "pradians"), ("pdeg", "pdegrees")]:
        add(f"angle:{canonical}", Decimal(1), canonical, long)
    return t


UNITS: dict[str, tuple[str, Decimal, str]] = _table()

# A number (decimal with `_`, exponent, or a radix integer) immediately followed by an optional unit.
_QUANTITY = re.compile(
    r"""^\s*(?P<num>[+-]?(?:0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|\d[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?[\d_]+)?))
         (?P<unit>[A-Za-z]*)\s*$""",
    re.VERBOSE,
)


class UnitError(ValueError):
    """A quantity that cannot be parsed or converted; the message is one line for users."""


class QuantityOutOfRange(UnitError):
    """A quantity outside the range of `limitr_py.bounds`."""


@dataclass(frozen=True, slots=True)
class Quantity:
    """An exact number with an optional unit (canonical spelling)."""

    amount: Decimal
    unit: str | None = None

    def __str__(self) -> str:
        return f"{format_decimal(self.amount)}{self.unit or ''}"


def is_unit(name: str) -> bool:
    return name in UNITS


def canonical_unit(name: str) -> str:
    return UNITS[name][2]


def dimension(unit: str) -> str:
    return UNITS[unit][0]


def parse_number_literal(text: str) -> int | Decimal:
    """A Stof number literal without unit → int or Decimal (stof.md §3.2 rule 2)."""
    body = text.replace("_", "")
    sign = -1 if body.startswith("-") else 1
    unsigned = body.lstrip("+-")
    lowered = unsigned[:2].lower()
    if lowered in ("0x", "0o", "0b"):
        base = {"0x": 16, "0o": 8, "0b": 2}[lowered]
        try:
            return sign * int(unsigned[2:], base)
        except ValueError:
            raise UnitError(f"`{text}` is not a number") from None
    try:
        value = Decimal(body)
    except InvalidOperation as exc:
        raise UnitError(f"`{text}` is not a number") from exc
    if value and abs(value.adjusted()) > bounds.MAX_INTEGER_DIGITS + bounds.MAX_FRACTION_DIGITS:
        return value  # far out of range: left to the range check, never expanded into an int
    if "." not in body and "e" not in body.lower():
        return int(value)
    if "." not in body and value == value.to_integral_value() and abs(value) < 2**53:
        return int(value)
    return value


def parse_quantity(value: object) -> Quantity:
    """int, Decimal, float (through `str`) or a string such as `'250MB'`, `'1_000'`, `'30days'` → Quantity, within
    the range of `limitr_py.bounds` (UnitError otherwise)."""
    try:
        return _parse_quantity(value)
    except bounds.OutOfRange as exc:
        raise QuantityOutOfRange(str(exc)) from None


def _parse_quantity(value: object) -> Quantity:
    if isinstance(value, bool):
        raise UnitError(f"`{value}` is not a number")
    if isinstance(value, int):
        return Quantity(Decimal(bounds.check_int(value)))
    if isinstance(value, Decimal):
        return Quantity(bounds.check(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise UnitError(f"`{value}` is not a finite number")
        return Quantity(bounds.check(Decimal(str(value))))
    if isinstance(value, Quantity):
        return Quantity(bounds.check(value.amount), value.unit)
    if not isinstance(value, str):
        raise UnitError(f"`{value!r}` is not a number or a quantity")
    if len(value) > bounds.MAX_NUMBER_TEXT:
        raise QuantityOutOfRange(f"a quantity of {len(value)} characters is out of range")
    m = _QUANTITY.match(value)
    if not m:
        raise UnitError(f"`{value}` is not a number or a quantity such as `250MB` or `30days`")
    number = bounds.check(Decimal(parse_number_literal(m["num"])), m["num"])
    unit = m["unit"] or None
    if unit is not None and unit not in UNITS:
        raise UnitError(f"unknown unit `{unit}` in `{value}`")
    return Quantity(number, canonical_unit(unit) if unit else None)


def convert(quantity: Quantity, to_unit: str | None) -> Decimal:
    """The amount of `quantity` expressed in `to_unit` (None = unitless: only unitless quantities fit)."""
    if quantity.unit is None or quantity.unit == to_unit:
        return quantity.amount
    if to_unit is None:
        raise UnitError(f"`{quantity}` has a unit but the target takes plain numbers")
    if to_unit not in UNITS:
        raise UnitError(f"unknown unit `{to_unit}`")
    from_dim, from_factor, _ = UNITS[quantity.unit]
    to_dim, to_factor, _ = UNITS[to_unit]
    if from_dim != to_dim:
        raise UnitError(f"`{quantity}` cannot be converted to `{to_unit}`")
    return quantity.amount * from_factor / to_factor


def to_units(value: object, unit: str | None) -> Decimal:
    """A value in the given unit: unitless numbers are already in it; quantities are converted exactly."""
    return convert(parse_quantity(value), unit)


def duration_ms(value: object) -> Decimal:
    """A duration in milliseconds: a plain number is milliseconds (Limitr `ms` fields); a time unit converts."""
    q = parse_quantity(value)
    if q.unit is not None and dimension(q.unit) != "time":
        raise UnitError(f"`{value}` is not a duration; use a time unit such as `30days` or `10min`")
    ms = convert(q, "ms")
    if abs(ms) > _MAX_DURATION_MS:
        raise QuantityOutOfRange(f"`{value}` is longer than the longest duration accepted (100 years)")
    return ms


_MAX_DURATION_MS = Decimal(bounds.MAX_DURATION // timedelta(milliseconds=1))


def format_decimal(value: Decimal | int) -> str:
    """Plain positional text for a number (no exponent, no trailing zeros): the canonical form we write."""
    if isinstance(value, int):
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    # normalize() rounds to the *current* context's precision (28 digits by default): the engine's own context
    # keeps every digit, so the text is the same whoever calls (a record written in the engine and re-encoded
    # outside it, a fingerprint computed at compile time)
    return format(value.normalize(bounds.ENGINE_CONTEXT), "f")
