"""The one tree every format lowers to, with a JSON pointer → file:line:column index."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limitr_py.diagnostics import Diagnostic, pointer_from, pointer_tokens

MAX_BYTES = 32 * 1024 * 1024
"""Documents larger than this are refused before parsing (a policy of 1,000 plans is about 3 MB)."""

MAX_DEPTH = 64
"""Deepest nesting accepted; a Limitr policy is about 8 levels deep (Stof itself stops at 128)."""

MAX_NODES = 2_000_000
"""Most values one document may expand to (stops YAML alias bombs)."""


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a member's key starts and where its value starts (1-based; equal for array items)."""

    line: int
    col: int
    value_line: int
    value_col: int


@dataclass(slots=True)
class SourceDocument:
    """A parsed document: the JSON-shaped tree (dict, list, str, int, Decimal, bool, None) and its locations.

    Readers whose parser gives no positions (JSON, TOML) pass an `indexer` instead of filling `locations`: it
    runs the first time a position is asked for, so a valid document never pays for its index.
    """

    tree: Any
    format: str
    file: str
    text: str
    _locations: dict[str, Loc] | None = None
    indexer: Callable[[SourceDocument], dict[str, Loc]] | None = None
    _lines: list[str] | None = None

    @property
    def locations(self) -> dict[str, Loc]:
        if self._locations is None:
            self._locations = self.indexer(self) if self.indexer is not None else {}
        return self._locations

    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def source_line(self, line: int) -> str | None:
        lines = self.lines()
        return lines[line - 1] if 0 < line <= len(lines) else None

    def locate(self, pointer: str, *, value: bool = False) -> tuple[int, int]:
        """The position of `pointer`, or of its nearest located ancestor."""
        tokens = pointer_tokens(pointer)
        while True:
            p = pointer_from(tokens)
            loc = self.locations.get(p)
            if loc is not None:
                return (loc.value_line, loc.value_col) if value else (loc.line, loc.col)
            if not tokens:
                return (1, 1)
            tokens.pop()

    def duplicate_key(self, key: str, line: int, col: int, pointer: str, reader: str) -> Diagnostic:
        """L108 at the repeated key (the document's cached lines serve every one: linear in their number)."""
        return Diagnostic(
            "L108",
            f"duplicate key `{key}`",
            self.file,
            line,
            col,
            pointer,
            f"{reader} keeps only the last value; remove the other one",
            self.source_line(line),
        )

    def diagnostic(
        self, code: str, message: str, pointer: str, hint: str | None = None, *, value: bool = False
    ) -> Diagnostic:
        line, col = self.locate(pointer, value=value)
        return Diagnostic(code, message, self.file, line, col, pointer, hint, self.source_line(line))


class LineIndex:
    """Offset → (line, column), both 1-based, for readers that work on offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def line_text(self, line: int) -> str | None:
        if not 0 < line <= len(self.starts):
            return None
        start = self.starts[line - 1]
        end = self.starts[line] - 1 if line < len(self.starts) else len(self.text)
        return self.text[start:end]


def syntax_diagnostic(
    code: str, message: str, file: str, text: str, line: int, col: int, pointer: str = "", hint: str | None = None
) -> Diagnostic:
    lines = text.splitlines()
    src = lines[line - 1] if 0 < line <= len(lines) else None
    return Diagnostic(code, message, file, max(1, line), max(1, col), pointer, hint, src)


def quoted(quote: str) -> str:
    """A regex for a `quote`-delimited string with backslash escapes that an unterminated string cannot slow.

    Unrolled and possessive: each character is looked at once and no backtracking state is kept per character
    (the textbook `"(?:[^"\\]|\\.)*"` keeps one per character: 3.5 GiB for a 30 MB string). An unterminated
    string matches to the end of the text, so a scanner never starts again from every later quote.
    """
    q = re.escape(quote)
    return rf"{q}[^{q}\\]*+(?:\\[\s\S][^{q}\\]*+)*+(?:{q}|\\?\Z)"


STRING = "|".join([r'r\#"[^"]*+(?:"(?!\#)[^"]*+)*+(?:"\#|\Z)', quoted('"'), quoted("'"), quoted("`")])
"""A Stof raw string `r#"…"#` or a quoted string (JSON's is the `"` one), matched in one pass."""

COMMENT = r"//[^\n]*+|/\*[^*]*+(?:\*(?!/)[^*]*+)*+(?:\*/|\Z)"
"""A line or block comment; an unterminated block comment runs to the end of the text."""

_QUOTED_OR_COMMENT = re.compile(f"{STRING}|{COMMENT}")

_BRACKETS = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def bracket_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> int | None:
    """Offset of the bracket where `{`/`[` nesting first passes `limit` (outside strings and comments), or None.

    Run before the JSON and Stof parsers so a hostile document is refused cheaply instead of recursing in them.
    Strings and comments are blanked in the regex engine, then the brackets are summed as they are found.
    """
    blanked = _QUOTED_OR_COMMENT.sub(lambda m: " " * len(m.group()), text)
    depth = 0
    for m in _BRACKETS.finditer(blanked):
        depth += _STEP[m.group()]
        if depth > limit:
            return m.start()
    return None


def tree_depth_exceeds(tree: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed tree nests containers deeper than `limit` (iterative: safe on any depth)."""
    stack = [(tree, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
