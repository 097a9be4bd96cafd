"""The exception hierarchy of SPEC §7."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limitr_py.diagnostics import Diagnostic


class LimitrError(Exception):
    """Base class of every error limitr_py raises on purpose."""


class PolicyError(LimitrError):
    """A policy document could not be loaded; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        first = self.diagnostics[0].headline() if self.diagnostics else "invalid policy"
        more = len(self.diagnostics) - 1
        super().__init__(first if more <= 0 else f"{first} (and {more} more)")

    def render(self) -> str:
        """All diagnostics with their source lines and carets."""
        return "\n\n".join(d.render() for d in self.diagnostics)


class PolicySyntaxError(PolicyError):
    """The text is not a well-formed document of its format (codes L1xx)."""


class PolicySchemaError(PolicyError):
    """The document does not match schemas/policy.schema.json (codes L2xx)."""


class PolicyCompileError(PolicyError):
    """The document is well-formed but inconsistent (codes L3xx)."""


class InvalidArgumentError(LimitrError, ValueError):
    """A malformed argument to a public function (one-line message)."""


class StoreError(LimitrError):
    """The store is unreachable or its data is corrupt; the engine fails closed."""


class CorruptRecordError(StoreError):
    """A stored record that cannot be decoded; `key` names it. `delete_customer` and `set_customer` still replace
    a corrupt customer record, so it can always be repaired."""

    def __init__(self, key: str, why: str) -> None:
        repair = "; delete_customer or set_customer replaces it" if key.startswith("customer:") else ""
        super().__init__(f"corrupt record `{key}`: {why}{repair}")
        self.key = key


class ConcurrentUpdateError(LimitrError):
    """A commit kept losing version checks after every retry."""


class IdempotencyConflictError(LimitrError):
    """An idempotency key was reused with different arguments."""
