"""Reads the data subset of Stof (Limitr's `.stof` policy files) with the lark grammar in grammar/stof.lark.

Plain data goes through the fast reader (stof_fast.py) first; this reader takes every document it gives up on.

Parsing builds a small syntax tree (`_Node`); a second pass turns it into the JSON-shaped tree with pointers,
merging repeated object keys as Stof 0.10.6 does and reporting every non-data value it finds. Text that is not
data at all (functions, imports, references, expressions) stops the parse; the error is classified from the
tokens just before it so the user reads "functions are not supported" at the `fn`, not "unexpected `(`".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from limitr_py.diagnostics import Diagnostic, dotted, pointer_from, pointer_join
from limitr_py.documents.source import (
    COMMENT,
    MAX_NODES,
    STRING,
    LineIndex,
    Loc,
    SourceDocument,
    syntax_diagnostic,
)
from limitr_py.documents.stof_fast import fast_tree
from limitr_py.documents.stof_values import BARE_WORDS, Problem, number_value, string_value
from limitr_py.resources import resource_path
from limitr_py.units import UNITS


@dataclass(slots=True)
class _Node:
    kind: str  # "obj" | "arr" | "val"
    line: int
    col: int
    value: Any = None  # val: the Python value; obj: list[_Field]; arr: list[_Node]
    problem: Problem | None = None
    end_line: int = 0


@dataclass(slots=True)
class _Field:
    key: str
    line: int
    col: int
    value: _Node
    type_text: str | None = None
    type_line: int = 0
    type_col: int = 0
    problems: list[tuple[Problem, int, int]] = field(default_factory=list)


class _Build(Transformer[Token, Any]):
    """Runs inside the LALR parser (no parse tree is built): produces _Node/_Field values."""

    def document(self, children: list[Any]) -> list[_Field]:
        fields: list[_Field] = children[1] if len(children) == 3 else children[0]
        return fields

    def members(self, children: list[Any]) -> list[_Field]:
        return children

    def field(self, children: list[Any]) -> _Field:
        *prefix, key_tok, value = children  # prefix: attributes, `const`, a type annotation
        problems: list[tuple[Problem, int, int]] = []
        if key_tok.type == "IDENT":
            key = str(key_tok)
        else:
            unescaped = string_value(key_tok.type, key_tok)
            if isinstance(unescaped, Problem):
                problems.append((unescaped, key_tok.line, key_tok.column))
                key = str(key_tok)[1:-1]
            else:
                key = unescaped
        if not prefix:
            return _Field(key, key_tok.line, key_tok.column, value)
        type_text, type_pos = None, (0, 0)
        for child in prefix:
            if isinstance(child, tuple) and child[0] == "attr":
                if child[1] is not None:
                    problems.append(child[1])
            elif isinstance(child, tuple) and child[0] == "type":
                type_text, type_pos = child[1], child[2]
        return _Field(key, key_tok.line, key_tok.column, value, type_text, type_pos[0], type_pos[1], problems)

    def attribute(self, children: list[Any]) -> tuple[str, tuple[Problem, int, int] | None]:
        if len(children) == 2 and isinstance(children[1], _Node) and children[1].kind != "val":
            arg = children[1]
            return ("attr", (Problem("L104", "attribute arguments must be literals"), arg.line, arg.col))
        if len(children) == 2 and isinstance(children[1], _Node) and children[1].problem is not None:
            arg = children[1]
            return (
                "attr",
                (
                    Problem(
                        "L104", "attribute arguments must be literals", "attributes are ignored by limitr; remove it"
                    ),
                    arg.line,
                    arg.col,
                ),
            )
        return ("attr", None)

    def object(self, children: list[Any]) -> _Node:
        open_, fields, close = children
        return _Node("obj", open_.line, open_.column, fields, end_line=close.line)

    def array(self, children: list[Any]) -> _Node:
        open_, close = children[0], children[-1]
        return _Node("arr", open_.line, open_.column, list(children[1:-1]), end_line=close.line)

    def scalar(self, children: list[Token]) -> _Node:
        tok = children[0]
        node = _Node("val", tok.line or 1, tok.column or 1, end_line=tok.end_line or tok.line or 1)
        if tok.type == "IDENT":
            word = str(tok)
            if word in BARE_WORDS:
                node.value = BARE_WORDS[word]
            else:
                node.problem = Problem(
                    "L103", f"references are not supported: `{word}`", f"if `{word}` is text, quote it: `'{word}'`"
                )
        elif tok.type == "NUMBER":
            value = number_value(tok)
            if isinstance(value, Problem):
                node.problem = value
            else:
                node.value = value
        elif tok.type == "VERSION":
            node.value = str(tok)
        else:
            value = string_value(tok.type, tok)
            if isinstance(value, Problem):
                node.problem = value
            else:
                node.value = value
        return node

    def type_expr(self, children: list[Any]) -> tuple[str, str, tuple[int, int]]:
        terms = [c for c in children]
        return ("type", " | ".join(t[0] for t in terms), terms[0][1])

    def type_term(self, children: list[Any]) -> tuple[str, tuple[int, int]]:
        text, pos = children[0]
        return (text + ("!" if len(children) > 1 else ""), pos)

    def named_type(self, children: list[Token]) -> tuple[str, tuple[int, int]]:
        return (".".join(str(c) for c in children), (children[0].line or 1, children[0].column or 1))

    def generic_type(self, children: list[Any]) -> tuple[str, tuple[int, int]]:
        return (f"{children[0]}<{children[1][1]}>", (children[0].line, children[0].column))

    def tuple_type(self, children: list[Any]) -> tuple[str, tuple[int, int]]:
        return ("(" + ", ".join(c[1] for c in children) + ")", children[0][2])


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resource_path("grammar", "stof.lark").read_text(encoding="utf-8")
    return Lark(
        grammar, start="document", parser="lalr", lexer="contextual", transformer=_Build(), maybe_placeholders=False
    )


class _Lowering:
    """Second pass: _Node tree → JSON-shaped tree, locations and diagnostics."""

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []
        self.nodes = 0

    def report(self, problem: Problem, line: int, col: int, pointer: str) -> None:
        self.problems.append(
            Diagnostic(
                problem.code,
                problem.message,
                self.doc.file,
                line,
                col,
                pointer,
                problem.hint,
                self.doc.source_line(line),
            )
        )

    def value(self, node: _Node, pointer: str) -> Any:
        self.nodes += 1
        if node.kind == "obj":
            return self.members(node.value, pointer, {})
        if node.kind == "arr":
            out = []
            for i, item in enumerate(node.value):
                p = pointer_join(pointer, i)
                self.doc.locations[p] = Loc(item.line, item.col, item.line, item.col)
                out.append(self.value(item, p))
            return out
        if node.problem is not None:
            self.report(node.problem, node.line, node.col, pointer)
        return node.value

    def members(self, fields: list[_Field], pointer: str, into: dict[str, Any]) -> dict[str, Any]:
        prev_end = 0
        for f in fields:
            p = pointer_join(pointer, f.key)
            for problem, line, col in f.problems:
                self.report(problem, line, col, p)
            if f.type_text in UNITS and f.type_line == prev_end:
                # `a: 10 ms` + newline + `b: 1` reads as a field `b` typed `ms`: almost always a detached unit.
                self.report(
                    Problem(
                        "L106",
                        f"unit `{f.type_text}` is separated from its number",
                        f"attach the unit to the number, e.g. `10{f.type_text}`",
                    ),
                    f.type_line,
                    f.type_col,
                    p,
                )
            prev_end = f.value.end_line or f.value.line
            existing = into.get(f.key)
            if f.value.kind == "obj" and isinstance(existing, dict):
                # Stof ≥ 0.10.6: parsing into an existing object merges into it.
                self.members(f.value.value, p, existing)
                continue
            self.doc.locations[p] = Loc(f.line, f.col, f.value.line, f.value.col)
            into.pop(f.key, None)  # a replaced key moves to its latest position, as in Stof's IndexMap
            into[f.key] = self.value(f.value, p)
        if self.nodes > MAX_NODES:
            raise _TooLarge()
        return into


class _TooLarge(Exception):
    pass


def read_stof(text: str, file: str) -> tuple[SourceDocument, list[Diagnostic]]:
    """Parse Stof data text. Returns the document and its problems (empty when it is clean data).

    Plain data is read by the fast reader; anything else, and the positions of any document, by this one."""
    tree = fast_tree(text)
    if tree is not None:
        return SourceDocument(tree=tree, format="stof", file=file, text=text, indexer=_index), []
    return _read_fully(text, file)


def _index(doc: SourceDocument) -> dict[str, Loc]:
    """Every member's position, for a diagnostic about a document the fast reader read."""
    return _read_fully(doc.text, doc.file)[0].locations


def _read_fully(text: str, file: str) -> tuple[SourceDocument, list[Diagnostic]]:
    doc = SourceDocument(tree=None, format="stof", file=file, text=text)
    try:
        fields: list[_Field] = _parser().parse(text)  # type: ignore[assignment]  # the transformer's result
    except UnexpectedInput as exc:
        return doc, [_classify(exc, text, file)]
    lowering = _Lowering(doc)
    try:
        doc.tree = lowering.members(fields, "", {})
    except _TooLarge:
        return doc, [syntax_diagnostic("L110", "document has too many values", file, text, 1, 1)]
    return doc, lowering.problems


# ---------------------------------------------------------------------------------------------------------------
# Error classification: name the non-data construct instead of lark's "unexpected token".

_TOKEN = re.compile(
    rf"""(?P<ws>\s+)|(?P<comment>{COMMENT})
      |(?P<str>{STRING})
      |(?P<word>[A-Za-z_@][A-Za-z0-9_@\-]*)
      |(?P<num>[+-]?\d[\w.]*)
      |(?P<punct>[{{}}\[\]:,;()<>.|+\-*/%?!&=\#])
      |(?P<other>.)""",
    re.VERBOSE,
)


@dataclass(slots=True)
class _Tok:
    kind: str
    text: str
    offset: int


def _tokens(text: str, end: int) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(text, 0, end):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        out.append(_Tok(kind, m.group(), m.start()))
    return out


def _open_path(tokens: list[_Tok]) -> tuple[list[str], list[_Tok]]:
    """Field path of the innermost open object/array at the end of `tokens`, and the unclosed brackets."""
    frames: list[tuple[str | None, str, list[int]]] = []  # (name, bracket, [array index])
    opened: list[_Tok] = []
    pending: str | None = None
    value_at = -1  # index of the scalar value given to `pending`, once there is one
    for i, tok in enumerate(tokens):
        if tok.text == ":" and i > 0 and tokens[i - 1].kind in ("word", "str"):
            prev = tokens[i - 1].text
            pending = prev[1:-1] if tokens[i - 1].kind == "str" else prev
            value_at = -1
        elif tok.kind in ("word", "str", "num") and i > 0 and tokens[i - 1].text == ":":
            value_at = i
        elif tok.text in "{[" and tok.kind == "punct":
            if frames and frames[-1][1] == "[":
                name: str | None = str(frames[-1][2][0])
            else:
                name = pending
            frames.append((name, tok.text, [0]))
            opened.append(tok)
            pending = None
        elif tok.text in "}]" and tok.kind == "punct":
            if frames:
                frames.pop()
                opened.pop()
            pending = None
        elif tok.text == "," and frames and frames[-1][1] == "[":
            frames[-1][2][0] += 1
    path = [f[0] for f in frames if f[0] is not None]
    # The field still being written, unless its value is complete and the error lies beyond it.
    if pending is not None and (value_at == -1 or value_at >= len(tokens) - 2):
        path.append(pending)
    return path, opened


def _function_hint(path: list[str], name: str) -> str:
    if "notifications" in path:
        return "declare the notification as data: `{ events: ['meter-changed'], when: 'remaining < 100' }`"
    if name == "overhead":
        return (
            "replace the cost function with a rate table, `overhead: { by: 'model', rates: { large: "
            "{ input: 0.000003, output: 0.000015 } } }`, or register a Python callable with "
            "`Limitr.new(doc, overhead={'<credit>': fn})`"
        )
    return "policies hold data only: move this logic into your application"


def _classify(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    index = LineIndex(text)
    offset: int
    if isinstance(exc, UnexpectedCharacters):
        offset, bad = exc.pos_in_stream or 0, exc.char
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        offset, bad = exc.token.start_pos or 0, str(exc.token)
    else:
        offset, bad = len(text), ""
    before = _tokens(text, offset)
    path, opened = _open_path(before)
    words = [t.text if t.kind != "str" else "<str>" for t in before[-4:]]

    def at(tok_offset: int, code: str, message: str, hint: str | None = None, name: str | None = None) -> Diagnostic:
        line, col = index.position(tok_offset)
        where = path + ([name] if name else [])
        pointer = pointer_from(where)
        return syntax_diagnostic(
            code, f"{message} at `{dotted(pointer)}`" if where else message, file, text, line, col, pointer, hint
        )

    unterminated = _unterminated(text, offset)
    if unterminated is not None:
        start, what, closer = unterminated
        s_line, s_col = index.position(start)
        return syntax_diagnostic(
            "L101", f"unterminated {what}", file, text, s_line, s_col, "", f"close it with `{closer}`"
        )
    # fn NAME (  /  async fn NAME (
    for back in (2, 1):
        if len(before) >= back and before[-back].text == "fn":
            name = before[-back + 1].text if back == 2 else "?"
            return at(
                before[-back].offset,
                "L102",
                f"functions are not supported: `fn {name}`",
                _function_hint(path, name),
                name if back == 2 else None,
            )
    if bad == "fn":
        return at(offset, "L102", "functions are not supported", _function_hint(path, ""))
    if len(before) >= 3 and before[-3].text == ":" and before[-2].kind == "word" and before[-1].text == "(":
        return at(
            before[-2].offset,
            "L104",
            f"calls and constructors are not supported: `{before[-2].text}(…)`",
            "write the value as a literal",
        )
    if (before and before[-1].text == "import") or (
        len(before) >= 2 and before[-2].text == "import" and before[-1].kind == "str"
    ):
        tok = before[-1] if before[-1].text == "import" else before[-2]
        return at(tok.offset, "L105", "imports are not supported", "inline the imported data into this document")
    if len(before) >= 2 and before[-2].text == "root" and bad == "{":
        return at(
            before[-2].offset,
            "L105",
            "`root` blocks are not supported",
            "put the policy under a single `policy: { … }` field",
        )
    if any(t.text.startswith("data@") for t in before[-3:]) or (bad == "|" and words[-1:] == [":"]):
        return at(offset, "L105", "binary data blocks are not supported", "write the data as literals")
    if bad == "<" or bad.startswith("<"):
        return at(
            offset,
            "L103",
            "references are not supported: `<…>` type references",
            "copy the referenced object's fields here",
        )
    if len(before) >= 2 and before[-2].text == ":" and before[-1].kind == "word":
        word = before[-1].text
        if bad == ".":
            return at(
                before[-1].offset,
                "L103",
                f"references are not supported: `{word}.…`",
                "write the referenced value as a literal",
            )
        if bad == "(":
            return at(
                before[-1].offset,
                "L104",
                f"calls and constructors are not supported: `{word}(…)`",
                "write the value as a literal",
            )
        if word == "new":
            return at(
                before[-1].offset, "L104", "constructors are not supported: `new …`", "write the object as `{ … }`"
            )
    if len(before) >= 3 and before[-3].text == ":" and before[-2].text == "new":
        return at(before[-2].offset, "L104", "constructors are not supported: `new …`", "write the object as `{ … }`")
    if before and before[-1].text == "new":
        return at(before[-1].offset, "L104", "constructors are not supported: `new …`", "write the object as `{ … }`")
    if (len(before) >= 2 and before[-2].text == "as" and before[-3:-2] and before[-3].text in ("}", "]", ")")) or (
        before and before[-1].text == "as"
    ):
        tok = before[-2] if before[-1].text != "as" else before[-1]
        return at(tok.offset, "L104", "casts (`as Type`) are not supported", "remove the cast")
    if bad == "(" and before and before[-1].text == ":":
        return at(offset, "L104", "tuples and lambdas are not supported", "write a list `[…]` or an object `{…}`")
    operator = bad[:1] if bad else ""
    if (
        operator
        and operator in "+-*/%?!&|=>"
        and before
        and (
            before[-1].kind in ("num", "str")
            or before[-1].text in ("]", "}", ")")
            or (before[-1].kind == "word" and len(before) >= 2 and before[-2].text == ":")
        )
    ):
        return at(offset, "L104", "expressions are not supported", "write the computed value as a literal")

    line, col = index.position(offset)
    if not bad:
        if opened:
            o_line, o_col = index.position(opened[-1].offset)
            return syntax_diagnostic(
                "L101",
                "unexpected end of document",
                file,
                text,
                line,
                col,
                "",
                f"the `{opened[-1].text}` opened at {o_line}:{o_col} is never closed",
            )
        return syntax_diagnostic("L101", "unexpected end of document", file, text, line, col)
    expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
    readable = sorted({_READABLE.get(e, e.lower()) for e in expected if not e.startswith("__")})
    hint = f"expected {', '.join(readable[:6])}" if readable else None
    pointer = pointer_from(path)
    shown = bad if len(bad) <= 20 else bad[:20] + "…"
    return syntax_diagnostic("L101", f"unexpected `{shown}`", file, text, line, col, pointer, hint)


_OPENERS = (
    ('r#"', "raw string", '"#'),
    ("/*", "block comment", "*/"),
    ('"', "string", '"'),
    ("'", "string", "'"),
    ("`", "string", "`"),
)
_STRING_AT = re.compile(STRING)


def _unterminated(text: str, offset: int) -> tuple[int, str, str] | None:
    """(start, what, closer) when the parse stopped at a string or comment that is never closed."""
    for opener, what, closer in _OPENERS:
        # lark stops at the `#` of `r#"`, after reading the `r` as a name
        start = offset - 1 if opener == 'r#"' and offset > 0 and text.startswith("#", offset) else offset
        if text.startswith(opener, start):
            if opener in ('r#"', "/*"):
                if text.find(closer, start + len(opener)) < 0:
                    return start, what, closer
            elif (m := _STRING_AT.match(text + "\0", start)) and m.end() > len(text):
                return start, what, closer  # it ran past the end: no closing quote
    return None


_READABLE = {
    "IDENT": "a name",
    "DQ_STRING": "a string",
    "SQ_STRING": "a string",
    "RAW_STRING": "a string",
    "BT_STRING": "a string",
    "NUMBER": "a number",
    "VERSION": "a version",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "SEMICOLON": "`;`",
    "$END": "end of document",
    "HASH": "`#[`",
    "CONST": "`const`",
    "NOTNULL": "`!`",
    "VBAR": "`|`",
    "LPAR": "`(`",
    "RPAR": "`)`",
}
