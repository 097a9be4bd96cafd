"""`Limitr`: the policy users hold. `Limitr.new(doc)` reads and compiles a document; a store may be named by URL.

The enforcing methods are the engine's (`limitr_py/engine/limitr.py`); this class adds the two things that need
the parsers and the store drivers, so the engine itself imports neither (the import-linter contracts in
pyproject.toml keep it so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limitr_py.clock import Clock
from limitr_py.compile import load_policy
from limitr_py.compile.graph import CompiledPolicy
from limitr_py.engine.decide import OverheadFn
from limitr_py.engine.limitr import Engine
from limitr_py.stores import Store, open_store


class Limitr(Engine):
    """A policy ready to enforce. Create it with `Limitr.new(doc)`; share it between threads."""

    def __init__(
        self,
        compiled: CompiledPolicy,
        *,
        store: str | Store | None = None,
        clock: Clock | None = None,
        overhead: Mapping[str, OverheadFn] | None = None,
    ) -> None:
        """`store` is a Store or a URL; without one, `$LIMITR_STORE`, else a fresh memory store."""
        super().__init__(
            compiled,
            store=open_store(store if store is not None else os.environ.get("LIMITR_STORE")),
            clock=clock,
            overhead=overhead,
        )

    @classmethod
    def new(
        cls,
        doc: str | bytes | Path | Mapping[str, Any],
        *,
        format: str | None = None,
        store: str | Store | None = None,
        clock: Clock | None = None,
        validate: bool = True,
        overhead: Mapping[str, OverheadFn] | None = None,
    ) -> Limitr:
        """Load and compile a policy document (JSON, YAML, TOML, Stof text or bytes, a Path, or a mapping).

        Raises PolicyError (with every diagnostic) when the document is invalid. `validate=False` skips the JSON
        Schema pass for documents already validated in CI; the semantic checks always run. `store` is a Store or
        a URL (default `memory://`), `clock` a Clock (default the system clock), `overhead` maps a credit name to
        a callable `(units, context) -> runes` giving the provider cost of a call.
        """
        return cls(load_policy(doc, format=format, validate=validate), store=store, clock=clock, overhead=overhead)
