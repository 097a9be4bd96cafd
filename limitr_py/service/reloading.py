"""Live policy reload: on SIGHUP, and (`--watch`) when the policy file changes.

The watcher looks at the file's size, modification time and content hash once a second in a thread of its own
(a wall-clock poll of a file, not engine time), so an editor's save, a `cp` or a config-management tool's
atomic rename are all seen; a reload that finds the same policy changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("limitr.service")
POLL_SECONDS = 1.0


def on_sighup(reload: Callable[[], bool]) -> None:
    """Reload on SIGHUP, in a thread of the pool (compiling a large policy must not hold up the event loop)."""
    try:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, reload))
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (not the main thread, Windows)
        log.warning("SIGHUP does not reload the policy in this process; use --watch")


def _fingerprint(path: Path) -> tuple[int, int, str] | None:
    try:
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # being replaced: looked at again next time


class Watcher:
    def __init__(self, path: Path, reload: Callable[[], bool]) -> None:
        self.path, self.reload = path, reload
        self._stop = threading.Event()
        self._seen = _fingerprint(path)
        self._thread = threading.Thread(target=self._run, name="limitr-policy-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            now = _fingerprint(self.path)
            if now is not None and now != self._seen:
                self._seen = now
                self.reload()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
