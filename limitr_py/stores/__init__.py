"""Stores by URL (SPEC §5). Backends are chosen from an explicit table; drivers are imported only when used."""

from __future__ import annotations

from limitr_py.errors import InvalidArgumentError
from limitr_py.stores.base import ABSENT, Commit, Store, Versioned
from limitr_py.stores.memory import MemoryStore

__all__ = ["ABSENT", "Commit", "MemoryStore", "Store", "Versioned", "open_store"]


def open_store(url: str | Store | None) -> Store:
    """A Store from a URL (`memory://`) or an existing Store; None means a fresh memory store."""
    if url is None:
        return MemoryStore()
    if not isinstance(url, str):
        if isinstance(url, Store):
            return url
        raise InvalidArgumentError(f"store must be a URL or a Store, got `{type(url).__name__}`")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        return MemoryStore(url)
    raise InvalidArgumentError(f"unknown store URL `{url}`; use `memory://`")
