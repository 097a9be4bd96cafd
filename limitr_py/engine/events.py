"""Event handlers and declarative notifications (reference/limitr.md §3.8, SPEC §2.4).

Delivery order for each event: policy notifications whose `events` include it and whose `when` matches re-emit
it under the notification's name (meter-* and cap-* events only, as in Limitr), then the handlers registered for
the event's name, then the `"*"` handlers. A handler that raises is logged and skipped: the call it reports on
has already been committed, so its answer must not change.

Events are owed to the names handlers are registered under (an event name, a notification name, or "*"), not to
the handlers themselves: a restarted worker registers new function objects (lambdas, bound methods, other
functions), and what it owes is "the handlers of `meter-overage`", whoever they are now. On durable stores the
engine writes every event to the outbox with the names it is owed to, and acknowledges a name once every handler
registered under it returned without raising: after a crash, `deliver_pending()` gives each pending event to the
handlers registered now under the names still owed, and acknowledges those.

Webhook endpoints (engine/webhooks.py) are sinks, and so is the customers' event history (engine/history.py):
an event one wants is written to the outbox for it on every store, owed to a consumer whose name has a colon
(`webhook:<endpoint>`, `history:`; handler names never have one), and it is the engine's background work
(a dispatcher, a history round), never `deliver`, that settles it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable

from limitr_py import event_names
from limitr_py.compile.graph import Notification
from limitr_py.diagnostics import close_match
from limitr_py.engine.values import Event
from limitr_py.engine.webhooks import Endpoint
from limitr_py.errors import InvalidArgumentError

Handler = Callable[[Event], object]
log = logging.getLogger("limitr_py.events")

_NOTIFIABLE = ("meter-", "cap-")


def background(consumers: tuple[str, ...]) -> bool:
    """Whether an outbox entry is owed to background work (a webhook endpoint, the history), not to handlers."""
    return any(":" in consumer for consumer in consumers)


EVENT_NAMES = frozenset(event_names.EVENT_NAMES)
"""Every event the engine sends (README: Events); `on()` also takes the policy's notification names and "*"."""


class EventBus:
    def __init__(self, notifications: Iterable[Notification]) -> None:
        self._notifications = tuple(notifications)
        self._names = EVENT_NAMES | {n.name for n in self._notifications} | {"*"}
        self._handlers: dict[str, tuple[tuple[str, Handler], ...]] = {}
        self.sinks: dict[str, Endpoint] = {}  # replaced, never changed in place: read without the lock
        self.history_skip: frozenset[str] | None = None  # None: no history kept; else the names it leaves out
        self._lock = threading.Lock()
        self.background_work = threading.Event()  # set when a commit wrote a webhook delivery or history

    def _known(self, name: object) -> None:
        if not isinstance(name, str) or name not in self._names:
            close = close_match(name, sorted(self._names))
            hint = f"; did you mean `{close}`?" if close else '; use an event name, a notification name or "*"'
            raise InvalidArgumentError(f"no event is named `{str(name)[:80]}`{hint}")

    def on(self, name: str, handler: Handler) -> None:
        self._known(name)
        if not callable(handler):
            raise InvalidArgumentError(f"handler for `{name}` must be callable")
        with self._lock:  # copy-on-write: publishing never holds the lock
            self._handlers[name] = (*self._handlers.get(name, ()), (name, handler))

    def off(self, name: str, handler: Handler | None = None) -> None:
        self._known(name)  # a typo would otherwise leave the handler registered, silently
        with self._lock:
            kept = () if handler is None else tuple(r for r in self._handlers.get(name, ()) if r[1] != handler)
            if kept:
                self._handlers[name] = kept
            else:
                self._handlers.pop(name, None)

    def add_sink(self, endpoint: Endpoint) -> None:
        for name in endpoint.events:
            self._known(name)
        with self._lock:
            self.sinks = {**self.sinks, endpoint.name: endpoint}

    def remove_sink(self, name: str) -> None:
        with self._lock:
            self.sinks = {k: v for k, v in self.sinks.items() if k != name}

    def keep_history(self, skip: frozenset[str] | None) -> None:
        for name in skip or ():
            self._known(name)
        self.history_skip = skip

    @property
    def active(self) -> bool:
        """Whether anyone listens: when nobody does, the engine skips building event payloads."""
        return bool(self._handlers) or bool(self.sinks) or self.history_skip is not None

    def listens(self, name: str) -> bool:
        """Whether an event named `name` reaches any handler or sink."""
        handlers = self._handlers
        if name in handlers or "*" in handlers or (self.history_skip is not None and name not in self.history_skip):
            return True
        return any(sink.wants(name) for sink in self.sinks.values())

    def wanted(self, name: str) -> bool:
        """Whether an event named `name` reaches anyone, itself or as a notification that may re-emit it: an
        event nobody wants is not built (no id, no routes, no outbox entry)."""
        if self.listens(name):
            return True
        return name.startswith(_NOTIFIABLE) and any(
            self.listens(note.name) for note in self._notifications if "*" in note.events or name in note.events
        )

    def _as_delivered(self, event: Event) -> list[Event]:
        """The event re-emitted under each notification that matches it, then the event itself."""
        deliveries = []
        if event.name.startswith(_NOTIFIABLE):
            for note in self._notifications:
                if ("*" in note.events or event.name in note.events) and (
                    note.when is None or note.when.matches({**event.payload, "name": event.name})
                ):
                    deliveries.append(Event(note.name, event.payload, event.at, event.id))
        deliveries.append(event)
        return deliveries

    def sink_routes(self, event: Event) -> list[tuple[Event, Endpoint]]:
        """(event as delivered, endpoint) for every webhook endpoint that wants it."""
        sinks = self.sinks
        if not sinks:
            return []
        return [(d, sink) for d in self._as_delivered(event) for sink in sinks.values() if sink.wants(d.name)]

    def history_routes(self, event: Event) -> list[Event]:
        """The event as delivered (itself, and the notifications it matches) where history keeps it."""
        skip = self.history_skip
        if skip is None:
            return []
        return [d for d in self._as_delivered(event) if d.name not in skip]

    def _routes(self, event: Event) -> list[tuple[Event, str, Handler]]:
        """(event as delivered, consumer id, handler) in delivery order."""
        handlers = self._handlers
        routes: list[tuple[Event, str, Handler]] = []
        if not handlers:
            return routes
        for delivered in self._as_delivered(event):
            for consumer, handler in (*handlers.get(delivered.name, ()), *handlers.get("*", ())):
                routes.append((delivered, consumer, handler))
        return routes

    def consumers(self, event: Event) -> tuple[str, ...]:
        """The consumer ids an event is owed to, without delivering it."""
        return tuple(dict.fromkeys(consumer for _, consumer, _ in self._routes(event)))

    def deliver(self, event: Event, only: Collection[str] | None = None) -> set[str]:
        """Call each handler the event is owed to (all, or those in `only`); the consumers that succeeded."""
        done: set[str] = set()
        failed: set[str] = set()
        for delivered, consumer, handler in self._routes(event):
            if only is not None and consumer not in only:
                continue
            try:
                handler(delivered)
            except Exception:
                log.exception("event handler %r failed on %s", handler, delivered.name)
                failed.add(consumer)
            else:
                done.add(consumer)
        return done - failed

    def publish(self, events: Iterable[Event]) -> None:
        if not self._handlers:
            return
        for event in events:
            self.deliver(event)
