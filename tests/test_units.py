"""Exact units (reference/stof.md §5): decimal vs binary sizes, durations, number literal rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from limitr_py.units import UnitError, duration_ms, format_decimal, parse_number_literal, parse_quantity, to_units


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("1GB", "MB", "1000"),  # tutorial 04: 1GB is 1000MB
        ("10MiB", "MB", "10.48576"),  # 10 × 1024² bytes = 10,485,760 bytes
        ("250MB", "MB", "250"),
        ("2_000_000bytes", "MB", "2"),
        ("1KiB", "bytes", "1024"),
        ("8bits", "bytes", "1"),
        (5, "MB", "5"),  # a plain number is already in the credit's unit
        ("1.5hr", "min", "90"),
        ("1mi", "ft", "5280"),  # 1609.344 / 0.3048
        ("1lb", "oz", "16"),
    ],
)
def test_conversions_are_exact(value: object, unit: str, expected: str) -> None:
    assert to_units(value, unit) == Decimal(expected)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("1s", 1000),
        ("50ms", 50),
        ("1day", 86_400_000),
        ("7days", 604_800_000),
        ("14days", 1_209_600_000),
        ("30days", 2_592_000_000),
        ("10min", 600_000),
        (86_400_000, 86_400_000),
        ("86400000", 86_400_000),
        ("1500us", Decimal("1.5")),
    ],
)
def test_durations_in_milliseconds(value: object, ms: int) -> None:
    assert duration_ms(value) == ms


@pytest.mark.parametrize("bad", ["1hour", "10sec", "5h", "1d", "2w", "1kb", "1 GB x", "abc", "", "1B"])
def test_unknown_or_malformed_units_are_refused(bad: str) -> None:
    with pytest.raises(UnitError):
        parse_quantity(bad)


def test_cross_dimension_conversion_is_refused() -> None:
    with pytest.raises(UnitError, match="cannot be converted"):
        to_units("5s", "MB")
    with pytest.raises(UnitError):
        duration_ms("1GB")


def test_a_unit_where_plain_numbers_are_expected_is_refused() -> None:
    with pytest.raises(UnitError):
        to_units("1GB", None)


@pytest.mark.parametrize(
    ("literal", "expected", "kind"),
    [
        ("1_000_000", 1_000_000, int),
        ("1e9", 1_000_000_000, int),
        ("2E3", 2000, int),
        ("0xFF", 255, int),
        ("-0b1010", -10, int),
        ("0o17", 15, int),
        ("1_000.5", Decimal("1000.5"), Decimal),
        ("5.", Decimal(5), Decimal),
        ("1.5e-7", Decimal("1.5e-7"), Decimal),
        ("1e-11", Decimal("1e-11"), Decimal),
        ("+5", 5, int),
        ("0.50", Decimal("0.5"), Decimal),
    ],
)
def test_number_literals_follow_stof_0_10(literal: str, expected: object, kind: type) -> None:
    value = parse_number_literal(literal)
    assert value == expected
    assert type(value) is kind


def test_floats_are_converted_through_str() -> None:
    assert parse_quantity(0.1).amount == Decimal("0.1")
    with pytest.raises(UnitError):
        parse_quantity(float("inf"))
    with pytest.raises(UnitError):
        parse_quantity(True)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1.5E-7"), "0.00000015"),
        (Decimal("1E+3"), "1000"),
        (Decimal("0.50"), "0.5"),
        (Decimal("-0"), "0"),
        (7, "7"),
    ],
)
def test_format_decimal_is_positional_and_minimal(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


def test_format_decimal_keeps_every_digit_whatever_the_callers_context() -> None:
    """It once rounded to the caller's decimal context (28 digits by default): a record written inside the
    engine (200 digits) and encoded again outside it gave two texts for one number."""
    import decimal

    from limitr_py.units import format_decimal

    value = Decimal("0." + "123456789" * 5)  # 45 significant digits
    with decimal.localcontext(decimal.Context(prec=6)):
        assert format_decimal(value) == "0." + "123456789" * 5
    assert format_decimal(Decimal("2.50")) == "2.5" and format_decimal(Decimal("1E+3")) == "1000"
