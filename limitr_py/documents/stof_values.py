"""Stof scalars: a token's text → its value, or the problem that keeps it from being data.

Shared by both Stof readers (the fast one and the lark one), so a literal means the same thing in each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from limitr_py.units import UNITS, UnitError, format_decimal, parse_number_literal

BARE_WORDS = {"true": True, "false": False, "null": None}
_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_NUMBER_SPLIT = re.compile(
    r"^([+-]?(?:0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|\d[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?[\d_]+)?))(.*)$"
)


@dataclass(slots=True)
class Problem:
    code: str
    message: str
    hint: str | None = None


def _unescape(body: str, quote: str, extra: str = "") -> str | Problem:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt == quote or (nxt and nxt in extra):
            out.append(nxt)
        else:
            return Problem(
                "L107",
                f"unknown escape `\\{nxt}` in a string",
                "Stof strings allow only \\\\ \\n \\r \\t and an escaped quote of their own kind",
            )
        i += 2
    return "".join(out)


def string_value(kind: str, text: str) -> str | Problem:
    """`kind`: the lark terminal (RAW_STRING, BT_STRING, DQ_STRING or SQ_STRING); `text`: with its quotes."""
    if kind == "RAW_STRING":
        return text[3:-2]
    if kind == "BT_STRING":
        body = text[1:-1]
        if re.search(r"(?<!\\)\$\{", body):
            return Problem(
                "L104", "template strings with `${…}` are not supported", "write the final text as a plain string"
            )
        return _unescape(body, "`", "$")
    return _unescape(text[1:-1], text[0])


def number_value(tok: str) -> Any:
    """A NUMBER token (digits, then any unit letters) → int, Decimal, a quantity's text, or a Problem."""
    m = _NUMBER_SPLIT.match(tok)
    assert m is not None  # the NUMBER terminal guarantees the shape
    number, unit = m.group(1), m.group(2)
    try:
        value = parse_number_literal(number)
    except UnitError:
        return Problem("L101", f"`{tok}` is not a number", "write digits after `0x`, `0o`, `0b` and `e`")
    if not unit:
        return value
    if unit not in UNITS:
        return Problem(
            "L106",
            f"unknown unit `{unit}` in `{tok}`",
            "units are case-sensitive and attached: e.g. `30days`, `10min`, `1s`, `250MB`, `10MiB`",
        )
    # A quantity lowers to its string form (`1GB`), the form JSON, YAML and TOML write (SPEC §2.1).
    return f"{format_decimal(Decimal(value))}{unit}"
