"""Customers' recent events, kept in the store (engine/history.py): what the dashboard shows."""

from __future__ import annotations

from collections.abc import Iterable

from limitr_py.engine import arguments as args
from limitr_py.engine import history, keys
from limitr_py.engine.api.core import Core
from limitr_py.engine.exact import exact
from limitr_py.engine.values import Event
from limitr_py.errors import InvalidArgumentError


@exact
class History(Core):
    """The event-history methods of `Limitr`."""

    def keep_event_history(self, skip: Iterable[str] | None = ("meter-changed",)) -> None:
        """Keep each customer's last 50 events in the store: from now on, each commit of this engine writes its
        events to the outbox for the history too, and `record_event_history` moves them into the customers'
        records. `skip` names events not kept (default `meter-changed`, which most metered calls send);
        None stops keeping history."""
        if skip is None:
            self._bus.keep_history(None)
            return
        if isinstance(skip, str) or not isinstance(skip, Iterable):
            raise InvalidArgumentError("skip must be a list of event names")
        self._bus.keep_history(frozenset(skip))

    def record_event_history(self) -> int:
        """Move the history owed by commits (of any process on this store) into the customers' records; how
        many events were recorded. Safe to run in several processes at once."""
        return history.record(self._txn.store, self._txn.grouped, scan=10_000)

    def recent_events(self, id: str, limit: int = 20) -> list[Event]:
        """Customer `id`'s recorded events, newest first (at most 50 are kept)."""
        ident = args.ident(id)
        count = args.count(limit, "limit", 1, history.KEEP)
        key = keys.events(ident)
        return history.recent(self._txn.store.read([key], self._txn.group_for(ident))[key].value, count)
