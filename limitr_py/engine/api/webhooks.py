"""Webhook endpoints and their deliveries: what a dispatcher (`limitr serve --webhooks`) is built on.

`add_webhook` makes every commit of this engine write an outbox entry for each event the endpoint wants (on
every store, in the same commit as the state the event describes). `claim_webhooks` and `finish_webhook` are a
sender's loop: claim what is due, send it, record how it went. Any number of processes may run that loop on one
store; engine/deliveries.py says how they share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine import webhooks
from limitr_py.engine.api.core import Core
from limitr_py.engine.arguments import DurationLike
from limitr_py.engine.deliveries import Deliveries
from limitr_py.engine.exact import exact
from limitr_py.engine.webhooks import Endpoint, WebhookDelivery
from limitr_py.errors import InvalidArgumentError

ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
DELIVERY_ID = re.compile(r"whd_[0-9a-f]{32}")


@exact
class Webhooks(Core):
    """The webhook methods of `Limitr`."""

    def _deliveries(self) -> Deliveries:
        return Deliveries(self._txn.store, self._clock, self._bus)

    def add_webhook(
        self,
        name: str,
        events: Iterable[str] = ("*",),
        *,
        retry_schedule: Iterable[DurationLike] | None = None,
        timeout: DurationLike = "10s",
    ) -> None:
        """Deliver the events named `events` (event names, notification names, or "*") to webhook endpoint
        `name`: from now on, each commit writes them to the outbox for it. `retry_schedule` is the waits between
        attempts (default 5 s, 30 s, 2 min, 10 min, 1 h; dead-lettered after the last); `timeout` bounds one
        attempt. Registering a name again replaces its endpoint."""
        if not isinstance(name, str) or not ENDPOINT_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"webhook endpoint name must be 1–64 letters, digits, `_`, `-` or `.`, got `{str(name)[:80]}`"
            )
        if isinstance(events, str) or not isinstance(events, Iterable):
            raise InvalidArgumentError(f"events of webhook `{name}` must be a list of event names")
        wanted = frozenset(events)
        if not wanted:
            raise InvalidArgumentError(f"webhook `{name}` wants no events; name some, or `*` for all")
        schedule: tuple[timedelta, ...] = webhooks.DEFAULT_SCHEDULE
        if retry_schedule is not None:
            if isinstance(retry_schedule, str) or not isinstance(retry_schedule, Iterable):
                raise InvalidArgumentError(f"retry_schedule of webhook `{name}` must be a list of durations")
            schedule = tuple(args.duration(wait, f"each wait of webhook `{name}`") for wait in retry_schedule)
            if len(schedule) > 20:
                raise InvalidArgumentError(f"retry_schedule of webhook `{name}` holds more than 20 waits")
        self._bus.add_sink(Endpoint(name, wanted, schedule, args.duration(timeout, f"timeout of webhook `{name}`")))

    def remove_webhook(self, name: str) -> None:
        """Stop writing deliveries for endpoint `name` (those already written stay in the store)."""
        self._bus.remove_sink(args.text(name, "webhook endpoint name"))

    @property
    def webhook_endpoints(self) -> dict[str, Endpoint]:
        return dict(self._bus.sinks)

    def claim_webhooks(self, limit: int = 100) -> list[WebhookDelivery]:
        """Claim up to `limit` deliveries that are due, to endpoints registered here: each is this process's to
        send until its lease (twice the timeout, plus a second) runs out; report each with `finish_webhook`."""
        return self._deliveries().claim(args.count(limit, "limit", 1, 10_000), scan=10_000)

    def finish_webhook(
        self, delivery: WebhookDelivery, *, status: int | None = None, error: str | None = None
    ) -> WebhookDelivery | None:
        """Record an attempt of a claimed delivery: the HTTP `status` it got, or None with `error` when it timed
        out or could not connect. 2xx delivers it; no status, 5xx, 408 and 429 are tried again on the endpoint's
        schedule; anything else, or failing after the last wait, dead-letters it. Answers the delivery as
        recorded, or None when the claim had run out and another process took the delivery over."""
        if not isinstance(delivery, WebhookDelivery) or delivery.claim is None:
            raise InvalidArgumentError("finish_webhook takes a delivery that claim_webhooks returned")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status < 600):
            raise InvalidArgumentError(f"status must be an HTTP status from 100 to 599, got `{status!r}`")
        shown = None if error is None else args.text(error, "error")[:500]
        return self._deliveries().finish(delivery, status, shown)

    def webhook_deliveries(
        self, *, state: str | None = None, endpoint: str | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        """Deliveries, newest event first: `state` one of pending, delivering, delivered, dead."""
        chosen: Any = None if state is None else args.one_of(state, webhooks.STATES, "state")
        name = None if endpoint is None else args.text(endpoint, "endpoint")
        return self._deliveries().listing(chosen, name, args.count(limit, "limit", 1, 10_000))

    def webhook_delivery(self, id: str) -> WebhookDelivery | None:
        """One delivery by id; None when there is none (or its record was dropped after its keep time)."""
        return self._deliveries().get(self._delivery_id(id))

    def retry_webhook(self, id: str) -> WebhookDelivery | None:
        """Send a dead letter again, from its first attempt; None for an unknown id. A delivery that is not dead
        is refused (InvalidArgumentError)."""
        return self._deliveries().retry(self._delivery_id(id))

    @staticmethod
    def _delivery_id(value: Any) -> str:
        if not isinstance(value, str) or not DELIVERY_ID.fullmatch(value):
            raise InvalidArgumentError(f"a delivery id is `whd_` and 32 hex digits, got `{str(value)[:80]}`")
        return value
