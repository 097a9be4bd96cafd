"""JSON on the wire, exactly: numbers in are Decimal (never a float that rounds), numbers out are strings.

A request body is read by `json.loads` with `parse_float=Decimal`; NaN and Infinity are refused as JSON
(they are not JSON). An answer's Decimals are written in their plain text (`format_decimal`), its times in
ISO 8601, its dataclasses (Decision, Gate, Invoice, …) as objects of their fields.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from limitr_py.units import format_decimal

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


def plain(value: Any) -> Any:
    """A result as JSON-safe data: Decimal → its text, datetime → ISO 8601, dataclasses → objects."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_decimal(Decimal(value // timedelta(microseconds=1)) / 1000)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "text"):  # a Schedule
        return str(value.text)
    return str(value)


def dumps(value: Any) -> bytes:
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
