"""The fast Stof reader: plain data straight to the JSON-shaped tree, or None to leave the text to the full one.

The full reader (stof_reader.py, on lark's LALR parser and grammar/stof.lark) knows every construct, locates every
value and names every problem; it spends 94% of its time in lark's Python lexer and parser. Most policies are
plain data: fields, objects, arrays, strings, numbers (with units), versions, `true`/`false`/`null`, comments.
This reader handles exactly that subset and gives up (returns None) at anything else — an annotation, an
attribute, a bare word that is a reference, an escape Stof refuses, an unknown unit, anything malformed — so
the full reader then runs and reports it. Giving up is always correct, never a different answer: the tests check
that on the fixture corpus and on fuzzed documents this reader's tree is the full reader's whenever it answers.

Positions are not tracked. A document read here has its locations built by the full reader if a diagnostic ever
asks for one (a valid policy never does).
"""

from __future__ import annotations

import re
from typing import Any

from limitr_py.documents.source import COMMENT, MAX_DEPTH, MAX_NODES, STRING
from limitr_py.documents.stof_values import BARE_WORDS, Problem, number_value, string_value
from limitr_py.units import UNITS

# grammar/stof.lark's terminals (tests/test_stof_fast.py checks they are the grammar's own patterns).
IDENT = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]*")
VERSION = re.compile(r"\d+\.\d+\.\d+(?:-[A-Za-z0-9.\-]*)?(?:\+[A-Za-z0-9\-]*)?")
NUMBER = re.compile(r"[+-]?(?:0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|\d[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?[\d_]+)?)[A-Za-z]*")
LINE_COMMENT = "\\/\\/[^\n]*"
BLOCK_COMMENT = r"\/\*[^*]*+(?:\*(?!\/)[^*]*+)*+\*\/"  # no `\Z`: a comment never closed is no comment
RAW_STRING = r'r#"[^"]*+(?:"(?!#)[^"]*+)*+"#'
QUOTED = [r'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+"', r"'[^'\\]*+(?:\\[\s\S][^'\\]*+)*+'", r"`[^`\\]*+(?:\\[\s\S][^`\\]*+)*+`"]
WS = " \t\f\r\n"  # lark's common.WS; any other space is not Stof and falls to the catch-all below

# One token per match, the whitespace before it skipped: a comment, a string, a run of word characters (a name,
# number or version: classified afterwards against the terminals above), a bracket or separator, or any other
# single character (which makes the reader give up). Every part is possessive: linear, no backtracking state. A
# string or block comment never closed runs to the end of the text (source.py's forms), so the scan never starts
# again at every later quote; only the last token can be one, and it is checked against the grammar's own form.
_TOKEN = re.compile(rf"[{WS}]*+({COMMENT}|{STRING}|[+-]?[\w.@\-]++|[{{}}\[\]:,;]|[\s\S])")
_CLOSED = re.compile("|".join([BLOCK_COMMENT, RAW_STRING, *QUOTED]))
_STRING_KINDS = {'"': "DQ_STRING", "'": "SQ_STRING", "`": "BT_STRING"}


class _GiveUp(Exception):
    pass


_END = ""  # the token after the last one (every real token has at least one character)


def fast_tree(text: str) -> dict[str, Any] | None:
    """The document's tree when it is plain data (as the full reader would build it), else None."""
    # Trailing whitespace is dropped first: after it no token can start, and the scanner would try at every one
    # of its characters (quadratic in its length).
    tokens = _TOKEN.findall(text.rstrip(WS))
    last = tokens[-1] if tokens else ""
    opens = last[:1] in ("'", '"', "`") or last.startswith(('r#"', "/*"))
    if opens and _CLOSED.fullmatch(last) is None:
        return None  # never closed
    if "/" in text:
        tokens = [t for t in tokens if t[:2] not in ("//", "/*")]
    reader = _Reader(tokens)
    try:
        return reader.document()
    except (_GiveUp, StopIteration):
        return None


class _Reader:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.next = iter([*tokens, _END]).__next__  # past _END: StopIteration, caught as giving up
        self.nodes = 0
        self.scalars: dict[str, Any] = {}  # token text → its value: most literals repeat (keys, modes, amounts)
        self.keys: dict[str, str] = {}

    def document(self) -> dict[str, Any]:
        tokens = self.tokens
        if tokens and tokens[0] == "{":
            self.next()  # a whole-document `{ … }` is transparent
            into = self.members("}", {}, 1)
            if self.next() != _END:
                raise _GiveUp  # text after the closing `}`
        else:
            into = self.members(_END, {}, 0)
        if self.nodes > MAX_NODES:
            raise _GiveUp  # the full reader reports it
        return into

    def members(self, closer: str, into: dict[str, Any], depth: int) -> dict[str, Any]:
        """`(field ("," | ";")?)*` up to `closer` (`}` or the end), merged into `into` as Stof does."""
        if depth > MAX_DEPTH:
            raise _GiveUp
        next_token, keys = self.next, self.keys
        after_field = False
        while True:
            tok = next_token()
            if tok == closer:
                return into
            if tok in (",", ";"):
                if not after_field:
                    raise _GiveUp
                after_field = False
                continue
            key = keys.get(tok)
            if key is None:
                key = keys[tok] = self.key(tok)
            after = next_token()
            if after != ":":
                key = self.typed_key(tok, after)
            tok = next_token()
            self.nodes += 1
            if tok == "{":
                existing = into.get(key)
                if isinstance(existing, dict):  # Stof ≥ 0.10.6: an object parsed into an existing one merges
                    self.members("}", existing, depth + 1)
                    after_field = True
                    continue
                value: Any = self.members("}", {}, depth + 1)
            elif tok == "[":
                value = self.array(depth + 1)
            else:
                value = self.scalar(tok)
            into.pop(key, None)  # a replaced key moves to its latest position, as in Stof's IndexMap
            into[key] = value
            after_field = True

    def array(self, depth: int) -> list[Any]:
        """`[value ("," value)* ","?]`, after the `[`."""
        if depth > MAX_DEPTH:
            raise _GiveUp
        next_token = self.next
        out: list[Any] = []
        tok = next_token()
        while tok != "]":
            self.nodes += 1
            if tok == "{":
                out.append(self.members("}", {}, depth + 1))
            elif tok == "[":
                out.append(self.array(depth + 1))
            else:
                out.append(self.scalar(tok))
            tok = next_token()
            if tok == ",":
                tok = next_token()
            elif tok != "]":
                raise _GiveUp
        return out

    def key(self, tok: str) -> str:
        if tok[:1] in ('"', "'"):
            value = string_value(_STRING_KINDS[tok[0]], tok)
            if isinstance(value, Problem):
                raise _GiveUp
            return value
        ident = IDENT.match(tok)
        if tok == "const" or ident is None or ident.end() != len(tok):
            raise _GiveUp  # `const`, a type's name, anything else: the full reader's business
        return tok

    def typed_key(self, type_tok: str, key_tok: str) -> str:
        """`Type name:` — a one-word type annotation (`Limitr policy: …`), which the full reader ignores: the key
        after it, up to its `:`. A unit there (`a: 10 ms` + newline + `b: …`) the full reader may report."""
        if type_tok in UNITS or type_tok[0] in "\"'":
            raise _GiveUp
        key = self.key(key_tok)
        if self.next() != ":":
            raise _GiveUp
        return key

    def scalar(self, tok: str) -> Any:
        value = self.scalars.get(tok, _MISSING)
        if value is _MISSING:
            value = self.scalars[tok] = _scalar(tok)
        return value


_MISSING = object()


def _scalar(tok: str) -> Any:
    first = tok[:1]  # "" at the end of the text
    if first in _STRING_KINDS:
        value = string_value(_STRING_KINDS[first], tok)
    elif tok.startswith('r#"'):
        value = string_value("RAW_STRING", tok)
    elif first.isdigit() or first == "-":
        # lark tries VERSION before NUMBER (its priority is higher); the run of word characters must be exactly
        # the token lark would cut here, or the text is not what this reader handles. (`+` can continue a version
        # or start a number: such text goes to the full reader.)
        version = VERSION.match(tok)
        if version is not None:
            if version.end() != len(tok):
                raise _GiveUp
            return tok
        number = NUMBER.match(tok)
        if number is None or number.end() != len(tok):
            raise _GiveUp
        value = number_value(tok)
    elif tok in BARE_WORDS:
        return BARE_WORDS[tok]
    else:
        raise _GiveUp  # a reference, `{`/`[` out of place, a separator, an operator, …
    if isinstance(value, Problem):
        raise _GiveUp
    return value
