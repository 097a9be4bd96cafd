"""JSON reader: the stdlib parser for the values, a small scanner for the pointer → position index."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from limitr_py.diagnostics import Diagnostic, pointer_join
from limitr_py.documents.source import LineIndex, Loc, SourceDocument, quoted, syntax_diagnostic

_STRING = re.compile(quoted('"'))
_SCALAR = re.compile(r"-?\d[\d.eE+\-]*|true|false|null")
_WS = re.compile(r"[ \t\r\n]*")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def _number(text: str) -> int | Decimal:
    return Decimal(text)  # exactly as written; out-of-range numbers are L204 (schema.range_problems)


def _integer(text: str) -> int | Decimal:
    # `int` refuses texts past 4,300 digits (ValueError); Decimal reads any length in linear time
    return int(text) if len(text) <= 40 else Decimal(text)


def read_json(text: str, file: str) -> tuple[SourceDocument, list[Diagnostic]]:
    doc = SourceDocument(tree=None, format="json", file=file, text=text, indexer=_index)
    duplicates = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj = dict(pairs)
        duplicates = duplicates or len(obj) != len(pairs)
        return obj

    try:
        doc.tree = json.loads(
            text, parse_float=_number, parse_int=_integer, parse_constant=_reject_constant, object_pairs_hook=pairs_hook
        )
    except json.JSONDecodeError as exc:
        message = exc.msg[0].lower() + exc.msg[1:]
        return doc, [syntax_diagnostic("L101", f"invalid JSON: {message}", file, text, exc.lineno, exc.colno)]
    except ValueError as exc:
        return doc, [syntax_diagnostic("L101", f"invalid JSON: {exc}", file, text, 1, 1)]
    except RecursionError:
        return doc, [syntax_diagnostic("L110", "document is nested too deeply", file, text, 1, 1)]
    if not duplicates:
        return doc, []
    indexer = _Indexer(doc)
    indexer.run()
    doc._locations = indexer.locations
    return doc, indexer.problems


def _index(doc: SourceDocument) -> dict[str, Loc]:
    indexer = _Indexer(doc)
    indexer.run()
    return indexer.locations


class _Indexer:
    """Walks the (already valid) JSON text once, recording where each pointer's key and value start."""

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.text = doc.text
        self.lines = LineIndex(doc.text)
        self.problems: list[Diagnostic] = []
        self.locations: dict[str, Loc] = {}
        self.i = 0

    def run(self) -> None:
        self.skip()
        self.value("")

    def skip(self) -> None:
        m = _WS.match(self.text, self.i)
        self.i = m.end() if m else self.i

    def value(self, pointer: str) -> None:
        ch = self.text[self.i]
        if ch == "{":
            self.i += 1
            self.skip()
            seen: set[str] = set()
            while self.text[self.i] != "}":
                key_at = self.i
                m = _STRING.match(self.text, self.i)
                assert m is not None
                key = json.loads(m.group())
                self.i = m.end()
                self.skip()
                self.i += 1  # ':'
                self.skip()
                p = pointer_join(pointer, key)
                line, col = self.lines.position(key_at)
                vline, vcol = self.lines.position(self.i)
                if key in seen:
                    self.problems.append(self.doc.duplicate_key(key, line, col, p, "JSON"))
                seen.add(key)
                self.locations[p] = Loc(line, col, vline, vcol)
                self.value(p)
                self.skip()
                if self.text[self.i] == ",":
                    self.i += 1
                    self.skip()
            self.i += 1
        elif ch == "[":
            self.i += 1
            self.skip()
            index = 0
            while self.text[self.i] != "]":
                p = pointer_join(pointer, index)
                line, col = self.lines.position(self.i)
                self.locations[p] = Loc(line, col, line, col)
                self.value(p)
                self.skip()
                if self.text[self.i] == ",":
                    self.i += 1
                    self.skip()
                index += 1
            self.i += 1
        elif ch == '"':
            m = _STRING.match(self.text, self.i)
            assert m is not None
            self.i = m.end()
        else:
            m = _SCALAR.match(self.text, self.i)
            assert m is not None
            self.i = m.end()
