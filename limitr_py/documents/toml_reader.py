"""TOML reader: tomli for values; positions from a line scan of keys and table headers.

tomli reports no positions, so the index is the best a line scanner can give: every `key = …` line and
every `[table]` / `[[array]]` header is located, including dotted keys and keys inside one-line inline tables.
Anything it cannot place falls back to its nearest located ancestor (documented in the README).
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import tomli  # tomllib's own source compiled with mypyc: the same parser and messages, twice as fast

from limitr_py.diagnostics import Diagnostic, pointer_join
from limitr_py.documents.source import (
    MAX_DEPTH,
    LineIndex,
    Loc,
    SourceDocument,
    quoted,
    syntax_diagnostic,
)

_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_BARE = r"[A-Za-z0-9_\-]+"
_QUOTED = quoted('"') + r"|'[^'\n]*+'"
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY})\s*\]\]?")

_PART = re.compile(rf"{_BARE}|{_QUOTED}")

# tomli's work grows with the square of a dotted key's length (40,000 parts: 47 s and 6 GiB), so a key deeper
# than the document may nest is refused before tomli sees it. Strings and comments are masked first (to `x`s
# of the same length, so offsets still point into the text); each pattern is possessive: one pass, linear.
_MASKED = re.compile(
    "|".join(
        [
            r'"""[^"\\]*+(?:(?:\\[\s\S]|"(?!""))[^"\\]*+)*+(?:"""|\Z)',
            r"'''[^']*+(?:'(?!'')[^']*+)*+(?:'''|\Z)",
            quoted('"'),
            r"'[^'\n]*+'?",
            r"\#[^\n]*+",
        ]
    )
)
_DEEP_KEY = re.compile(rf"(?<![\w-])[\w-]++(?:[ \t]*+\.[ \t]*+[\w-]++){{{MAX_DEPTH},}}")


_MANY_DOTS = re.compile(rf"(?:\.[^\n.]*+){{{MAX_DEPTH}}}")  # a line with that many dots; starts at a `.`: fast


def _deep_key(text: str) -> int | None:
    """Offset of a dotted key with more than MAX_DEPTH parts, or None."""
    if _MANY_DOTS.search(text) is None:  # such a key has MAX_DEPTH dots on one line: most documents stop here
        return None
    masked = _MASKED.sub(lambda m: "x" * len(m.group()), text)
    m = _DEEP_KEY.search(masked)
    return m.start() if m else None


def _parts(key: str) -> list[str]:
    out = []
    for m in _PART.finditer(key):
        part = m.group()
        if part[0] == '"':
            out.append(tomli.loads(f"k = {part}")["k"])
        elif part[0] == "'":
            out.append(part[1:-1])
        else:
            out.append(part)
    return out


class _TooDeep(Exception):
    pass


def _plain(container: dict[str, Any] | list[Any], depth: int = 0) -> None:
    """TOML dates and times become ISO text, in place (the policy model has no date type); raises _TooDeep past
    MAX_DEPTH (so the recursion is bounded whatever tomli built)."""
    if depth >= MAX_DEPTH:
        raise _TooDeep
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in items:
        if isinstance(value, dict | list):
            _plain(value, depth + 1)
        elif isinstance(value, datetime.date | datetime.time):
            container[key] = value.isoformat()  # type: ignore[index]  # an existing key or index: no resize


def read_toml(text: str, file: str) -> tuple[SourceDocument, list[Diagnostic]]:
    doc = SourceDocument(tree=None, format="toml", file=file, text=text, indexer=_index)
    deep = _deep_key(text)
    if deep is not None:
        line, col = LineIndex(text).position(deep)
        return doc, [
            syntax_diagnostic("L110", f"a dotted key is nested deeper than {MAX_DEPTH} levels", file, text, line, col)
        ]
    try:
        tree = tomli.loads(text, parse_float=Decimal)
        _plain(tree)
        doc.tree = tree
    except tomli.TOMLDecodeError as exc:
        message = str(exc)
        m = _AT.search(message)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        message = _AT.sub("", message).strip()
        return doc, [
            syntax_diagnostic("L101", f"invalid TOML: {message[0].lower() + message[1:]}", file, text, line, col)
        ]
    except RecursionError:
        return doc, [syntax_diagnostic("L110", "document is nested too deeply", file, text, 1, 1)]
    except ValueError as exc:  # an integer longer than Python converts (`int` refuses past 4,300 digits)
        return doc, [syntax_diagnostic("L204", f"a number is out of range: {exc}", file, text, 1, 1)]
    except _TooDeep:
        return doc, [syntax_diagnostic("L110", f"document is nested deeper than {MAX_DEPTH} levels", file, text, 1, 1)]
    return doc, []


def _index(doc: SourceDocument) -> dict[str, Loc]:
    scan = _Scanner(doc)
    array_counts: dict[tuple[str | int, ...], int] = {}
    for number, line in enumerate(doc.text.splitlines(), start=1):
        header = _HEADER.match(line) if scan.at_top() else None
        if header:
            parts: list[str | int] = list(_parts(header.group(2)))
            if header.group(1) == "[[":
                index = array_counts.get(tuple(parts), 0)
                array_counts[tuple(parts)] = index + 1
                parts.append(index)
            pointer = "".join(pointer_join("", p) for p in parts)
            col = header.start(2) + 1
            scan.locations.setdefault(pointer, Loc(number, col, number, col))
            scan.reset(parts)
            continue
        scan.line(line, number)
    return scan.locations


_KEY_EQ = re.compile(rf"\s*({_KEY})\s*=\s*")


class _Scanner:
    """Locates `key = value` pairs line by line, through inline tables and (multi-line) arrays of them."""

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.locations: dict[str, Loc] = {}
        self.reset([])

    def reset(self, table: list[str | int]) -> None:
        self.stack: list[list[str | int]] = [table]  # pointer parts of each open `{`/`[` (arrays end in an index)
        self.kinds = ["table"]
        self.expect_key = True

    def at_top(self) -> bool:
        return len(self.stack) == 1

    def line(self, line: str, number: int) -> None:
        i, n = 0, len(line)
        while i < n:
            if self.expect_key and self.kinds[-1] == "table":
                m = _KEY_EQ.match(line, i)
                if m:
                    parts = self.stack[-1] + _parts(m.group(1))
                    pointer = "".join(pointer_join("", p) for p in parts)
                    self.locations.setdefault(pointer, Loc(number, m.start(1) + 1, number, m.end() + 1))
                    i = m.end()
                    self.expect_key = False
                    if i < n and line[i] in "{[":
                        self.stack.append(parts + ([0] if line[i] == "[" else []))
                        self.kinds.append("table" if line[i] == "{" else "array")
                        self.expect_key = line[i] == "{"
                        i += 1
                    continue
            ch = line[i]
            if ch == "#":
                return
            if ch in "\"'":
                end = line.find(ch, i + 1)
                while ch == '"' and end > 0 and line[end - 1] == "\\":
                    end = line.find(ch, end + 1)
                i = n if end < 0 else end + 1
                continue
            if ch == "{" and self.kinds[-1] == "array":
                self.stack.append(list(self.stack[-1]))
                self.kinds.append("table")
                self.expect_key = True
            elif ch in "}]" and len(self.stack) > 1:
                self.stack.pop()
                self.kinds.pop()
            elif ch == ",":
                if self.kinds[-1] == "array":
                    last = self.stack[-1][-1]
                    self.stack[-1][-1] = (last if isinstance(last, int) else 0) + 1
                self.expect_key = self.kinds[-1] == "table"
            i += 1
        if self.at_top():
            self.expect_key = True
