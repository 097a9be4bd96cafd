"""Validates a document tree against schemas/policy.schema.json and turns every error into a diagnostic.

Two validators read the same schema file. jsonschema-rs (compiled, draft 2020-12) answers "is it valid?" in
milliseconds even for thousands of plans; only when it says no does python-jsonschema walk the document to
report every error with its path, which is what diagnostics are made of. tests/test_schema.py checks that the
two agree.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from limitr_py import bounds
from limitr_py.diagnostics import Diagnostic, close_match, pointer_join, pointer_tokens
from limitr_py.documents.source import SourceDocument
from limitr_py.resources import resource_path

jsonschema_rs: Any
try:  # the fast path; without it (a platform with no wheel) every document takes the reference validator
    import jsonschema_rs
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    jsonschema_rs = None

_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "`true` or `false`",
    "null": "null",
}
_STATE_FIELDS = {"customers", "alt_customer_ids", "estimates", "invoices"}


@lru_cache(maxsize=1)
def policy_schema() -> dict[str, Any]:
    """The JSON Schema, parsed once."""
    schema: dict[str, Any] = json.loads(resource_path("schemas", "policy.schema.json").read_text(encoding="utf-8"))
    return schema


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(policy_schema())


def _pointer(error: ValidationError) -> str:
    p = ""
    for token in error.absolute_path:
        p = pointer_join(p, token)
    return p


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"`{value}`" if len(value) <= 40 else f"`{value[:40]}…`"
    return f"`{value}`"


def _field_name(pointer: str) -> str:
    tokens = pointer_tokens(pointer)
    return tokens[-1] if tokens and tokens[-1] else "the document"


def _wanted_types(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    named = [_TYPE_NAMES.get(t, t) for t in types if t != "null"]
    return " or ".join(named) if named else "null"


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    return jsonschema_rs.validator_for(policy_schema()) if jsonschema_rs is not None else None


def is_valid_fast(tree: Any) -> bool | None:
    """The compiled validator's verdict, or None when it is unavailable or cannot read the tree's values."""
    fast = _fast_validator()
    if fast is None:
        return None
    try:
        return bool(fast.is_valid(tree))
    except (ValueError, TypeError, OverflowError):
        return None


def validate_tree(doc: SourceDocument) -> list[Diagnostic]:
    """Every schema problem of `doc`, in document order."""
    if is_valid_fast(doc.tree):
        return []
    out: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.tree):
        out.extend(_convert(doc, error))
    out.sort(key=lambda d: (d.line, d.col, d.code))
    return out


def _convert(doc: SourceDocument, error: ValidationError) -> list[Diagnostic]:
    pointer = _pointer(error)
    name = _field_name(pointer)
    validator = error.validator
    schema: Any = error.schema  # a mapping for every keyword this converts (jsonschema types it more loosely)
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list((schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in known]
        return [_unknown_field(doc, pointer, key, known) for key in extra]
    if validator == "type":
        return [
            doc.diagnostic(
                "L202",
                f"`{name}` must be {_wanted_types(error.validator_value)}, not {_describe(error.instance)}",
                pointer,
                value=True,
            )
        ]
    if validator == "enum":
        values: Any = error.validator_value
        choices = [str(c) for c in values]
        close = close_match(error.instance, choices)
        hint = f"did you mean `{close}`?" if close else f"use one of {', '.join(f'`{c}`' for c in choices)}"
        return [
            doc.diagnostic(
                "L203",
                f"`{name}` must be one of {', '.join(f'`{c}`' for c in choices)}, not {_describe(error.instance)}",
                pointer,
                hint,
                value=True,
            )
        ]
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }[str(validator)]
        return [
            doc.diagnostic(
                "L204",
                f"`{name}` must be {bound} {error.validator_value}, not {_describe(error.instance)}",
                pointer,
                value=True,
            )
        ]
    if validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "a field"
        wrap = "wrap the policy as `policy: { credits: {…}, plans: {…} }`" if not pointer else None
        return [doc.diagnostic("L205", f"missing required field `{missing}`", pointer, wrap)]
    if validator == "pattern":
        if name == "currency":
            return [
                doc.diagnostic(
                    "L206",
                    f"`currency` must be an ISO 4217 code such as `USD`, not {_describe(error.instance)}",
                    pointer,
                    value=True,
                )
            ]
        if "propertyNames" in error.schema_path:
            return [
                doc.diagnostic(
                    "L206",
                    f"{_describe(error.instance)} is not a valid name",
                    pointer,
                    "names use letters, digits, `_`, `-`, `.` and `@`",
                )
            ]
        kind = "duration" if "days" in str(error.validator_value) else "number or quantity"
        example = "`30days`, `10min` or milliseconds" if kind == "duration" else "`100`, `0.5` or `250MB`"
        return [
            doc.diagnostic(
                "L206",
                f"`{name}` is not a {kind}: {_describe(error.instance)}",
                pointer,
                f"write e.g. {example}",
                value=True,
            )
        ]
    if validator == "maxProperties" and name == "rune":
        return [
            doc.diagnostic(
                "L207", "`rune` is built in and takes no fields", pointer, "remove the fields under `exchange.rune`"
            )
        ]
    message = error.message.replace("'", "`")
    return [doc.diagnostic("L207", f"`{name}`: {message[0].lower() + message[1:]}", pointer, value=True)]


def _unknown_field(doc: SourceDocument, parent: str, key: str, known: list[str]) -> Diagnostic:
    pointer = pointer_join(parent, key)
    if parent == "/policy" and key in _STATE_FIELDS:
        hint = "engine state is not part of a policy: it lives in the store (load it with `load_customers`)"
    elif parent == "" and not known:
        hint = None
    else:
        close = close_match(key, known)
        hint = (
            f"did you mean `{close}`?"
            if close
            else (f"known fields: {', '.join(f'`{k}`' for k in known[:12])}" if known else None)
        )
    return doc.diagnostic("L201", f"unknown field `{key}`", pointer, hint)


def range_problems(doc: SourceDocument) -> list[Diagnostic]:
    """L204 for every number outside the range of `limitr_py.bounds` (checked before anything else reads the
    tree: a number like `1e999999999` must never reach code that would expand it). One pass over the tree."""
    out: list[Diagnostic] = []
    stack: list[tuple[str, Any]] = [("", doc.tree)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((pointer_join(pointer, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((pointer_join(pointer, i), v) for i, v in enumerate(node))
        elif isinstance(node, Decimal | int) and not isinstance(node, bool):
            try:
                bounds.check_int(node) if isinstance(node, int) else bounds.check(node)
            except bounds.OutOfRange as exc:
                out.append(doc.diagnostic("L204", str(exc), pointer, value=True))
    out.sort(key=lambda d: (d.line, d.col))
    return out
