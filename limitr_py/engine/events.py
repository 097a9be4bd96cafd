"""Event handlers and declarative notifications (reference/limitr.md §3.8, SPEC §2.4).

Delivery order for each event: policy notifications whose `events` include it and whose `when` matches re-emit
it under the notification's name (meter-* and cap-* events only, as in Limitr), then the handlers registered for
the event's name, then the `"*"` handlers. A handler that raises is logged and skipped: the call it reports on
has already been committed, so its answer must not change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from limitr_py.compile.graph import Notification
from limitr_py.engine.values import Event
from limitr_py.errors import InvalidArgumentError

Handler = Callable[[Event], object]
log = logging.getLogger("limitr_py.events")

_NOTIFIABLE = ("meter-", "cap-")


class EventBus:
    def __init__(self, notifications: Iterable[Notification]) -> None:
        self._notifications = tuple(notifications)
        self._handlers: dict[str, tuple[Handler, ...]] = {}
        self._lock = threading.Lock()

    def on(self, name: str, handler: Handler) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("event name must be a non-empty string (or \"*\")")
        if not callable(handler):
            raise InvalidArgumentError(f"handler for `{name}` must be callable")
        with self._lock:  # copy-on-write: publishing never holds the lock
            self._handlers[name] = (*self._handlers.get(name, ()), handler)

    def off(self, name: str, handler: Handler | None = None) -> None:
        with self._lock:
            kept = () if handler is None else tuple(h for h in self._handlers.get(name, ()) if h != handler)
            if kept:
                self._handlers[name] = kept
            else:
                self._handlers.pop(name, None)

    @property
    def active(self) -> bool:
        """Whether anyone listens: when nobody does, the engine skips building event payloads."""
        return bool(self._handlers)

    def listens(self, name: str) -> bool:
        """Whether an event named `name` reaches any handler."""
        handlers = self._handlers
        return name in handlers or "*" in handlers

    def publish(self, events: Iterable[Event]) -> None:
        handlers = self._handlers
        if not handlers:
            return
        for event in events:
            if event.name.startswith(_NOTIFIABLE):
                for note in self._notifications:
                    if ("*" in note.events or event.name in note.events) and (
                            note.when is None or note.when.matches({**event.payload, "name": event.name})):
                        self._deliver(Event(note.name, event.payload, event.at, event.id), handlers)
            self._deliver(event, handlers)

    @staticmethod
    def _deliver(event: Event, handlers: dict[str, tuple[Handler, ...]]) -> None:
        for handler in (*handlers.get(event.name, ()), *handlers.get("*", ())):
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - see the module docstring
                log.exception("event handler %r failed on %s", handler, event.name)
