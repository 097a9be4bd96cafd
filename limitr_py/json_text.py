"""Compact JSON text of plain values: what the durable stores keep and what the service answers.

orjson writes it (about 8× `json.dumps` on a customer record); the standard library writes what orjson refuses,
an integer past 64 bits. Both give the same text for everything the engine writes (no floats ever reach it:
numbers are strings or bounded ints), apart from non-ASCII text, which orjson writes as UTF-8 and `json.dumps`
with `ensure_ascii=False` too.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def encoded(value: Any) -> bytes:
    """The text as UTF-8 (what an HTTP answer sends)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an int past 64 bits (or a type orjson does not know): the slow path decides
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps(value: Any) -> str:
    return encoded(value).decode("utf-8")


def pretty(value: Any) -> str:
    """Indented by two spaces, as `json.dumps(value, indent=2)` lays it out (for reports people read: with an
    indent the standard library's encoder runs in Python, 1.4M calls for simulate's report of 10,000 customers)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value, indent=2, ensure_ascii=False)
