"""Every public engine call computes in `bounds.ENGINE_CONTEXT`, whatever Decimal context its caller set.

Python's default context rounds at 28 significant digits, so `1 + 1e-30` would round and a meter at `1e28` would
not move. Within the bounds of accepted numbers the engine's context holds every sum and product exactly
(`limitr_py/bounds.py`). Contexts are per thread: each thread gets its own copy, set for the call and restored
after it (a caller's context, and its flags, are left as they were).
"""

from __future__ import annotations

import decimal
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from limitr_py.bounds import ENGINE_CONTEXT

C = TypeVar("C", bound=type)
_local = threading.local()


def _context() -> decimal.Context:
    ctx: decimal.Context | None = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _local.ctx = ENGINE_CONTEXT.copy()
    return ctx


def _in_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        ctx = _context()
        outer = decimal.getcontext()
        if outer is ctx:  # a public method calling another
            return fn(*args, **kwargs)
        decimal.setcontext(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            decimal.setcontext(outer)

    return call


def exact(cls: C) -> C:
    """Class decorator: every public method of `cls` runs in the engine's Decimal context."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _in_context(member))
    return cls
