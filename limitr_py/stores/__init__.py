"""Stores by URL (SPEC §5). Backends are chosen from an explicit table; drivers are imported only when used."""

from __future__ import annotations

from collections.abc import Callable

from limitr_py.errors import InvalidArgumentError, StoreError
from limitr_py.stores.base import ABSENT, Commit, CommitResult, OutboxEntry, Store, Versioned
from limitr_py.stores.memory import MemoryStore

__all__ = ["ABSENT", "Commit", "CommitResult", "MemoryStore", "OutboxEntry", "Store", "Versioned", "open_store"]


def _sqlite(url: str) -> Store:
    from limitr_py.stores.sqlite import SQLiteStore

    return SQLiteStore(url)


def _redis(url: str) -> Store:
    try:
        from limitr_py.stores.redis import RedisStore
    except ImportError as exc:
        raise StoreError(f"`{url}` needs the redis driver: pip install 'limitr-py[redis]' ({exc})") from None
    return RedisStore(url)


def _postgres(url: str) -> Store:
    try:
        from limitr_py.stores.postgres import PostgresStore
    except ImportError as exc:
        raise StoreError(f"`{url}` needs the PostgreSQL driver: pip install 'limitr-py[postgres]' ({exc})") from None
    return PostgresStore(url)


BACKENDS: dict[str, Callable[[str], Store]] = {
    "memory": MemoryStore,
    "sqlite": _sqlite,
    "redis": _redis,
    "rediss": _redis,
    "redis+cluster": _redis,
    "postgresql": _postgres,
    "postgres": _postgres,
}
"""URL scheme → backend: a new store is one new row (drivers are imported only when their scheme is used)."""


def open_store(url: str | Store | None) -> Store:
    """A Store from a URL or an existing Store; None means a fresh memory store."""
    if url is None:
        return MemoryStore()
    if not isinstance(url, str):
        if isinstance(url, Store):
            return url
        raise InvalidArgumentError(f"store must be a URL or a Store, got `{type(url).__name__}`")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    backend = BACKENDS.get(scheme)
    if backend is None:
        raise InvalidArgumentError(
            f"unknown store URL `{url}`; use one of: " + ", ".join(f"`{s}://…`" for s in BACKENDS)
        )
    return backend(url)
