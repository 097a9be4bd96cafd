"""JSON on the wire, exactly: numbers in are Decimal (never a float that rounds), numbers out are strings.

A request body is read by `json.loads` with `parse_float=Decimal`; NaN and Infinity are refused as JSON
(they are not JSON). An answer is written the way stores write records.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from limitr_py import json_text
from limitr_py.engine.records import encode

MAX_BODY = 64 * 1024
"""Largest request body accepted (bytes); a larger one is refused with 413 before it is parsed."""


class NotJSON(ValueError):
    """The body is not JSON; `position` is the offset where reading stopped."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def _constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def loads(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJSON(f"the body is not UTF-8 (byte {exc.start})", exc.start) from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise NotJSON(f"the body is not JSON: {exc.msg}", exc.pos) from None
    except ValueError as exc:  # a constant, or an integer too long for int()
        raise NotJSON(f"the body is not JSON: {exc}", 0) from None
    except RecursionError:
        raise NotJSON("the body is nested too deeply", 0) from None


def dumps(value: Any) -> bytes:
    """An answer as JSON: `records.encode`, the stores' own encoding (Decimal → its plain text, times ISO 8601,
    durations in ms, dataclasses → objects of their fields)."""
    return json_text.encoded(encode(value))
