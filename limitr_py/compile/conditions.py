"""Notification conditions (SPEC §2.4) parsed by grammar/stof.lark into evaluators of limitr_py/expressions.py.

The compile layer owns the parser; the compiled graph holds only `Expression`s (an evaluator tree of closures),
so nothing the engine imports needs lark.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput, VisitError

from limitr_py.expressions import ARITH, COMPARE, CONSTANTS, Evaluator, Expression, ExpressionError, contains, lookup
from limitr_py.resources import resource_path
from limitr_py.units import UnitError, parse_quantity


class _Compile(Transformer[Token, Evaluator]):
    def number(self, children: list[Token]) -> Evaluator:
        try:
            quantity = parse_quantity(str(children[0]))
        except UnitError as exc:
            raise ExpressionError(str(exc), children[0].column or 1) from None
        if quantity.unit is not None:
            # Payload numbers carry no unit, so `1GB` would silently compare in the wrong unit.
            raise ExpressionError(
                f"`{children[0]}`: write numbers in conditions without units", children[0].column or 1
            )
        value = quantity.amount
        return lambda _p: value

    def string(self, children: list[Token]) -> Evaluator:
        text = str(children[0])[1:-1].replace("\\" + str(children[0])[0], str(children[0])[0])
        return lambda _p: text

    def path(self, children: list[Token]) -> Evaluator:
        parts = tuple(str(c) for c in children)
        if len(parts) == 1 and parts[0] in CONSTANTS:
            constant = CONSTANTS[parts[0]]
            return lambda _p: constant
        return lambda p: lookup(p, parts)

    def list_lit(self, children: list[Evaluator | None]) -> Evaluator:
        items = [c for c in children if c is not None]
        return lambda p: [item(p) for item in items]

    def neg(self, children: list[Evaluator]) -> Evaluator:
        inner = children[0]
        return lambda p: -inner(p)

    def not_(self, children: list[Evaluator]) -> Evaluator:
        inner = children[0]
        return lambda p: not inner(p)

    def and_(self, children: list[Evaluator]) -> Evaluator:
        if len(children) == 1:
            return children[0]
        return lambda p: all(c(p) for c in children)

    def or_(self, children: list[Evaluator]) -> Evaluator:
        if len(children) == 1:
            return children[0]
        return lambda p: any(c(p) for c in children)

    def arith(self, children: list[Any]) -> Evaluator:
        if len(children) == 1:
            return children[0]  # type: ignore[no-any-return]
        first, rest = children[0], [(str(children[i]), children[i + 1]) for i in range(1, len(children), 2)]

        def run(p: Mapping[str, Any]) -> Any:
            value = first(p)
            for op, operand in rest:
                value = ARITH[op](value, operand(p))
            return value

        return run

    def compare(self, children: list[Any]) -> Evaluator:
        if len(children) == 1:  # a parenthesised operand that is not itself a comparison
            return children[0]  # type: ignore[no-any-return]
        left, op, right = children[0], " ".join(str(children[1]).split()), children[2]
        if op == "in":
            return lambda p: contains(right(p), left(p))
        if op == "not in":
            return lambda p: not contains(right(p), left(p))
        fn = COMPARE[op]

        def run(p: Mapping[str, Any]) -> bool:
            a, b = left(p), right(p)
            if a is None or b is None:
                return fn(a, b) if op in ("==", "!=") else False
            return fn(a, b)

        return run


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resource_path("grammar", "stof.lark").read_text(encoding="utf-8")
    return Lark(grammar, start="expression", parser="lalr", lexer="contextual")


@lru_cache(maxsize=256)
def compile_expression(text: str) -> Expression:
    """Parse and compile a condition; raises ExpressionError with the column of the problem."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        column = getattr(exc, "column", 1) or 1
        found = getattr(exc, "token", None) or getattr(exc, "char", "")
        shown = str(found) if str(found) else "end of expression"
        raise ExpressionError(f"unexpected `{shown}` in expression `{text}`", column) from None
    try:
        evaluate = _Compile().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExpressionError):
            raise exc.orig_exc from None
        raise
    return Expression(text, evaluate)
