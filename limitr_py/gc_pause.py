"""Hold the cyclic garbage collector while a document is read and compiled.

Reading a large policy allocates a few hundred thousand small objects that all stay alive (nodes, dicts,
Decimals). CPython starts a collection every 700 net allocations, and each full collection walks every live
object: reading 1,000 plans of YAML spent two thirds of its time in collections that found nothing. The trees
have no cycles to find, so collection waits until the load is done, then runs as usual. Process-wide, so the
pause is counted: concurrent loads in several threads resume collection only when the last one finishes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
