"""The range of every number limitr_py accepts, in documents and in calls, and the arithmetic that keeps it exact.

A quantity, price or amount is a decimal with at most `MAX_INTEGER_DIGITS` digits before the point and
`MAX_FRACTION_DIGITS` after it: |x| < 10^30, and nothing finer than 10^-30. Anything else is refused at the edge
(L204 in a document, InvalidArgumentError in a call), before it is turned into an int, hashed or stored: a number
like `1e999999999` is 15 bytes of text but a billion digits as an integer.

Within that range the engine's Decimal context (`ENGINE_CONTEXT`, 200 significant digits) holds every sum and
product it forms exactly: a price × a quantity has at most 60 + 60 digits, and a meter that adds up 10^100 calls of
the largest quantity still fits. Only division (rates, percentages, unit prices of a package) can round, at the
200th digit; invoice lines are rounded where SPEC says.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Final

MAX_INTEGER_DIGITS: Final = 30
MAX_FRACTION_DIGITS: Final = 30
LARGEST: Final = Decimal(10) ** MAX_INTEGER_DIGITS
MAX_NUMBER_TEXT: Final = 200
"""Longest text a number may be written with (digits, `_`, sign, exponent and unit): longer is refused unread."""

ENGINE_CONTEXT: Final = Context(prec=200, Emax=10**6, Emin=-(10**6), traps=[InvalidOperation, DivisionByZero, Overflow])
"""The Decimal context every engine call computes in (thread-local, set for the call's duration)."""


MAX_DURATION: Final = timedelta(days=36525)
"""Longest period, TTL or reset interval: 100 years (longer ones would overflow the calendar when added to now)."""
MIN_YEAR, MAX_YEAR = 1900, 9000
"""Times (expiries, `at`) must fall in these years: far enough from datetime's ends that a period can follow."""


class OutOfRange(ValueError):
    """A number outside the range above; the message is one line for users."""


def check(value: Decimal, text: object = None) -> Decimal:
    """`value` when it is finite and within range, else OutOfRange naming the range."""
    shown = value if text is None else text
    if not value.is_finite():
        raise OutOfRange(f"`{shown}` is not a finite number")
    if not value:
        return _ZERO  # `0e-99999` is zero, without an exponent that would widen every sum it enters
    if value.adjusted() >= MAX_INTEGER_DIGITS or _finer_than_allowed(value):
        raise OutOfRange(
            f"`{_short(shown)}` is out of range: numbers must be below 10^{MAX_INTEGER_DIGITS} in "
            f"size with at most {MAX_FRACTION_DIGITS} digits after the point"
        )
    if value.as_tuple().exponent < -MAX_FRACTION_DIGITS:  # type: ignore[operator]
        return value.quantize(_FINEST, context=ENGINE_CONTEXT)  # `1.000…0` with 40 zeros: the same number
    return value


def _finer_than_allowed(value: Decimal) -> bool:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: checked above
    # `1.500` is as fine as `1.5`: trailing zeros do not count
    return exponent < -MAX_FRACTION_DIGITS and value != value.quantize(_FINEST, context=ENGINE_CONTEXT)


_FINEST: Final = Decimal(1).scaleb(-MAX_FRACTION_DIGITS)
_ZERO: Final = Decimal(0)


def check_int(value: int) -> int:
    """An int within range, checked without converting a huge one to text."""
    if -LARGEST < value < LARGEST:
        return value
    raise OutOfRange(
        f"an integer of {value.bit_length()} bits is out of range: numbers must be below "
        f"10^{MAX_INTEGER_DIGITS} in size"
    )


def parse(text: str) -> Decimal:
    """Decimal text (`1.5`, `-2e3`) within range; OutOfRange or ValueError otherwise. Never slow: the text is
    bounded before Decimal reads it, and the exponent is checked before anything expands it."""
    if len(text) > MAX_NUMBER_TEXT:
        raise OutOfRange(f"`{_short(text)}` is too long for a number ({len(text)} characters)")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"`{text}` is not a number") from None
    return check(value, text)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…{text[-10:]}"


STORED_EXPONENT: Final = 1000
"""Records hold what the engine computed from bounded inputs: sums can outgrow an input's range and quotients
(rates) carry up to 200 digits, so a stored number is only required to fit the engine's context with room to
spare. That is still enough to refuse a corrupt `1e999999999` before any arithmetic meets it."""


def parse_stored(text: str) -> Decimal:
    """A number read back from a store: at most 200 significant digits, |exponent| ≤ STORED_EXPONENT."""
    if len(text) > 2 * MAX_NUMBER_TEXT:
        raise OutOfRange(f"`{_short(text)}` is too long for a stored number ({len(text)} characters)")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"`{text}` is not a number") from None
    if not value.is_finite():
        raise OutOfRange(f"`{text}` is not a finite number")
    if value and (abs(value.adjusted()) > STORED_EXPONENT or len(value.as_tuple().digits) > ENGINE_CONTEXT.prec):
        raise OutOfRange(f"`{_short(text)}` is out of the range a record can hold")
    return value
