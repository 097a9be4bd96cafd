"""Compilation: a located document → schema check → semantic checks → an immutable CompiledPolicy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limitr_py.compile.build import Builder, canonical, fingerprint
from limitr_py.compile.graph import CompiledPolicy
from limitr_py.diagnostics import Diagnostic
from limitr_py.documents import SourceDocument, load_document
from limitr_py.errors import PolicyCompileError, PolicyError, PolicySchemaError
from limitr_py.gc_pause import gc_paused
from limitr_py.schema import range_problems, validate_tree

__all__ = ["CompiledPolicy", "canonical", "check_document", "compile_document", "fingerprint", "load_policy"]


def _problems(doc: SourceDocument) -> tuple[list[Diagnostic], list[Diagnostic], CompiledPolicy | None]:
    with gc_paused():
        return _checked(doc)


def _checked(doc: SourceDocument) -> tuple[list[Diagnostic], list[Diagnostic], CompiledPolicy | None]:
    out_of_range = range_problems(doc)
    if out_of_range:  # nothing else may read such a tree: the schema and the compiler would expand the numbers
        return out_of_range, [], None
    schema_problems = validate_tree(doc)
    builder = Builder(doc)
    policy = builder.build()
    reported = {(s.line, s.col, s.pointer) for s in schema_problems}
    semantic = [d for d in builder.problems if (d.line, d.col, d.pointer) not in reported]
    return schema_problems, semantic, policy


def compile_document(doc: SourceDocument) -> CompiledPolicy:
    """Check and compile a parsed document. Raises PolicySchemaError or PolicyCompileError with every problem."""
    schema_problems, semantic, policy = _problems(doc)
    every = sorted(schema_problems + semantic, key=lambda d: (d.line, d.col, d.code))
    if schema_problems:
        raise PolicySchemaError(every)
    if semantic:
        raise PolicyCompileError(every)
    assert policy is not None
    return policy


def load_policy(
    source: str | bytes | Path | Mapping[str, Any],
    *,
    format: str | None = None,
    file: str | None = None,
    validate: bool = True,
) -> CompiledPolicy:
    """Read and compile a policy document in any of the four formats (or an in-memory mapping).

    `validate=False` skips only the JSON Schema pass (for documents validated in CI): the range check, which
    keeps a number like `1e999999999` from ever being expanded, and the semantic checks always run."""
    doc = load_document(source, format=format, file=file)
    if validate:
        return compile_document(doc)
    out_of_range = range_problems(doc)
    if out_of_range:
        raise PolicySchemaError(out_of_range)
    builder = Builder(doc)
    with gc_paused():
        compiled = builder.build()
    if builder.problems:
        raise PolicyCompileError(builder.problems)
    return compiled


@dataclass(frozen=True, slots=True)
class Checked:
    """What checking a document found: its problems (best first), the format it was read in (None when it could
    not be read), and the compiled policy's fingerprint when it is valid."""

    diagnostics: list[Diagnostic]
    format: str | None = None
    fingerprint: str | None = None


def best_first(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Syntax before schema before semantic problems, each in document order: the first one shown is the one to
    fix first (a semantic problem is often a consequence of a schema one; jsonschema's `best_match` idea)."""
    return sorted(diagnostics, key=lambda d: (d.code[:2], d.line, d.col, d.code))


def check(
    source: str | bytes | Path | Mapping[str, Any], *, format: str | None = None, file: str | None = None
) -> Checked:
    """Read and compile a document, reporting instead of raising (`limitr validate`)."""
    doc = None
    try:
        doc = load_document(source, format=format, file=file)
        policy = compile_document(doc)
    except PolicyError as exc:
        return Checked(best_first(list(exc.diagnostics)), doc.format if doc is not None else format)
    return Checked([], doc.format, policy.fingerprint)


def check_document(
    source: str | bytes | Path | Mapping[str, Any], *, format: str | None = None, file: str | None = None
) -> list[Diagnostic]:
    """Every problem of a document (empty when it is valid), best first."""
    return check(source, format=format, file=file).diagnostics
