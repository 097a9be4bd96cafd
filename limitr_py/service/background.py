"""The service's background work, in one thread per worker process: webhook rounds and the event history.

A round records the history the outbox owes (`Limitr.record_event_history`) and sends one batch of due webhooks
(service/webhooks.py). After a round that did something the next starts at once (a customer's next message may
be due as soon as the last one was acknowledged); otherwise the thread waits for a commit of its own process that
owed background work, or the poll interval, whichever comes first. A store that is down pauses the work (it is
logged); the next round tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from limitr_py.errors import LimitrError
from limitr_py.limitr import Limitr
from limitr_py.service.webhooks import Dispatcher

log = logging.getLogger("limitr.service")


class Background:
    def __init__(self, current: Callable[[], Limitr], dispatcher: Dispatcher | None, poll_seconds: float) -> None:
        """`current`: the engine of the policy in force (a reload swaps it)."""
        self.current, self.dispatcher, self.poll_seconds = current, dispatcher, poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="limitr-background", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self.dispatcher is not None:
            self.dispatcher.close()

    def round(self, engine: Limitr) -> int:
        """One round: how much was done (events recorded, webhooks claimed)."""
        done = engine.record_event_history()
        if self.dispatcher is not None:
            done += self.dispatcher.round(engine)
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            engine = self.current()
            try:
                done = self.round(engine)
            except LimitrError as exc:  # the store is down: the next round tries again
                log.warning("background work paused: %s", str(exc).splitlines()[0])
                done = 0
            if not done:
                engine.wait_for_outbox(self.poll_seconds)
