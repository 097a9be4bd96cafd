"""`Limitr`: the engine façade users hold. Built from a document with `Limitr.new(doc)`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limitr_py.compile import compile_document
from limitr_py.compile.build import Builder
from limitr_py.compile.graph import CompiledPolicy
from limitr_py.documents import load_document
from limitr_py.errors import PolicyCompileError


class Limitr:
    """A policy ready to enforce. Create it with `Limitr.new(doc)`; share it between threads."""

    def __init__(self, compiled: CompiledPolicy) -> None:
        self._compiled = compiled

    @classmethod
    def new(cls, doc: str | bytes | Path | Mapping[str, Any], *, format: str | None = None,
            validate: bool = True) -> Limitr:
        """Load and compile a policy document (JSON, YAML, TOML, Stof text or bytes, a Path, or a mapping).

        Raises PolicyError (with every diagnostic) when the document is invalid. `validate=False` skips the JSON
        Schema pass for documents already validated in CI; the semantic checks always run.
        """
        source = load_document(doc, format=format)
        if validate:
            return cls(compile_document(source))
        builder = Builder(source)
        compiled = builder.build()
        if builder.problems:
            raise PolicyCompileError(builder.problems)
        return cls(compiled)

    @property
    def policy(self) -> CompiledPolicy:
        """The compiled, immutable policy graph."""
        return self._compiled

    @property
    def fingerprint(self) -> str:
        """sha256 of the policy's canonical form: equal for the same policy in any format."""
        return self._compiled.fingerprint

    @property
    def currency(self) -> str:
        return self._compiled.currency
