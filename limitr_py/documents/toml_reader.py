"""TOML reader: stdlib tomllib for values; positions from a line scan of keys and table headers.

tomllib reports no positions, so the index is the best a line scanner can give: every `key = …` line and
every `[table]` / `[[array]]` header is located, including dotted keys and keys inside one-line inline tables.
Anything it cannot place falls back to its nearest located ancestor (documented in the README).
"""

from __future__ import annotations

import datetime
import re
import tomllib
from decimal import Decimal
from typing import Any

from limitr_py.diagnostics import Diagnostic, pointer_join
from limitr_py.documents.source import Loc, SourceDocument, syntax_diagnostic

_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_BARE = r"[A-Za-z0-9_\-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY})\s*\]\]?")

_PART = re.compile(rf"{_BARE}|{_QUOTED}")


def _parts(key: str) -> list[str]:
    out = []
    for m in _PART.finditer(key):
        part = m.group()
        if part[0] == '"':
            out.append(tomllib.loads(f"k = {part}")["k"])
        elif part[0] == "'":
            out.append(part[1:-1])
        else:
            out.append(part)
    return out


def _plain(value: Any) -> Any:
    """TOML dates and times become ISO text: the policy model has no date type."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def read_toml(text: str, file: str) -> tuple[SourceDocument, list[Diagnostic]]:
    doc = SourceDocument(tree=None, format="toml", file=file, text=text)
    try:
        doc.tree = _plain(tomllib.loads(text, parse_float=Decimal))
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _AT.search(message)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        message = _AT.sub("", message).strip()
        return doc, [syntax_diagnostic("L101", f"invalid TOML: {message[0].lower() + message[1:]}",
                                       file, text, line, col)]
    _index(doc)
    return doc, []


def _index(doc: SourceDocument) -> None:
    table: list[str | int] = []
    array_counts: dict[tuple[str | int, ...], int] = {}
    for number, line in enumerate(doc.text.splitlines(), start=1):
        stripped = line.split("#", 1)[0] if '"' not in line and "'" not in line else line
        header = _HEADER.match(stripped)
        if header:
            parts: list[str | int] = list(_parts(header.group(2)))
            if header.group(1) == "[[":
                index = array_counts.get(tuple(parts), 0)
                array_counts[tuple(parts)] = index + 1
                parts.append(index)
            table = parts
            pointer = "".join(pointer_join("", p) for p in table)
            col = header.start(2) + 1
            doc.locations.setdefault(pointer, Loc(number, col, number, col))
            continue
        _index_line(doc, stripped, number, list(table))


_KEY_EQ = re.compile(rf"\s*({_KEY})\s*=\s*")


def _index_line(doc: SourceDocument, line: str, number: int, table: list[str | int]) -> None:
    """Locate `key = value` pairs on one line, through nested inline tables and arrays of them."""
    stack: list[list[str | int]] = [table]  # the pointer parts of each open `{` or `[` (arrays end in an index)
    kinds = ["table"]
    i, n = 0, len(line)
    expect_key = True
    while i < n:
        if expect_key and kinds[-1] == "table":
            m = _KEY_EQ.match(line, i)
            if m:
                parts = stack[-1] + _parts(m.group(1))
                pointer = "".join(pointer_join("", p) for p in parts)
                doc.locations.setdefault(pointer, Loc(number, m.start(1) + 1, number, m.end() + 1))
                i = m.end()
                expect_key = False
                if i < n and line[i] in "{[":
                    stack.append(parts + ([0] if line[i] == "[" else []))
                    kinds.append("table" if line[i] == "{" else "array")
                    expect_key = line[i] == "{"
                    i += 1
                continue
        ch = line[i]
        if ch in "\"'":
            end = line.find(ch, i + 1)
            while ch == '"' and end > 0 and line[end - 1] == "\\":
                end = line.find(ch, end + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "{" and kinds[-1] == "array":
            stack.append(list(stack[-1]))
            kinds.append("table")
            expect_key = True
        elif ch in "}]" and len(stack) > 1:
            stack.pop()
            kinds.pop()
        elif ch == ",":
            if kinds[-1] == "array":
                last = stack[-1][-1]
                stack[-1][-1] = (last if isinstance(last, int) else 0) + 1
            expect_key = kinds[-1] == "table"
        i += 1
