"""Webhook deliveries as data: endpoints, delivery records and their transitions (pure: no store, no clock).

Every committed event is written to the outbox once per (event as delivered, endpoint that wants it): an entry
owed to the one consumer `webhook:<endpoint>`, with an id of its own (the delivery id, also the message's
`webhook-id`). Next to it, a versioned delivery record `webhook:<delivery id>` in the same customer group holds
what delivery has done: attempts, last status, next try, and a claim (who is sending it until when). A process
sends a delivery only after its claim committed against the record's version, so two processes do not send
the same message in the normal case; a claim that outlives its lease (the sender died) is taken over: at least
once. Finishing writes the outcome and, once the message was acknowledged or dead-lettered, removes the outbox
entry, in the same commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from limitr_py.engine import keys
from limitr_py.engine.values import Event

CONSUMER_PREFIX = "webhook:"
"""Outbox consumers named so are delivered by a webhook dispatcher, not by in-process handlers."""
RECORD_PREFIX = keys.WEBHOOK.prefix
"""Delivery records' keys: `webhook:<delivery id>`."""

DEFAULT_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
"""The waits between attempts; after the last one fails, the delivery is dead-lettered (6 attempts in all)."""
DEFAULT_TIMEOUT = timedelta(seconds=10)
DELIVERED_KEEP = timedelta(days=7)
"""How long the record of an acknowledged delivery is kept (for `GET /v1/webhooks/deliveries`)."""
DEAD_KEEP = timedelta(days=30)
"""How long a dead letter is kept for a retry (with the message it could not deliver)."""
JITTER = 0.2
"""Each wait is stretched or shrunk by up to this fraction, so deliveries to one endpoint that failed together
spread out when it comes back. The factor is a hash of (delivery id, attempt): repeatable, no random state."""

State = Literal["pending", "delivering", "delivered", "dead"]
STATES: tuple[State, ...] = ("pending", "delivering", "delivered", "dead")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the engine knows of a webhook endpoint: the names it wants, its retry schedule and timeout (its URL
    and secret belong to whoever sends)."""

    name: str
    events: frozenset[str]
    retry_schedule: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    timeout: timedelta = DEFAULT_TIMEOUT

    def wants(self, name: str) -> bool:
        return "*" in self.events or name in self.events

    @property
    def lease(self) -> timedelta:
        """How long a claim holds: past it, the sender is presumed dead and another process may send."""
        return self.timeout * 2 + timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One message to one endpoint: the event as delivered (a notification's name when it re-emitted the event),
    where delivery stands, and `claim`, set on a delivery this process claimed and must finish."""

    id: str
    endpoint: str
    event: Event
    customer: str | None
    state: State
    attempts: int
    last_status: int | None
    last_error: str | None
    next_try: datetime | None
    updated: datetime | None
    claim: str | None = None


def delivery_id(endpoint: str, event: Event) -> str:
    """Stable for (endpoint, event id, name as delivered): the same message keeps its id through retries."""
    digest = hashlib.sha256(f"{endpoint}\0{event.id}\0{event.name}".encode()).hexdigest()
    return "whd_" + digest[:32]


def record_key(delivery: str) -> str:
    return RECORD_PREFIX + delivery


def consumer(endpoint: str) -> str:
    return CONSUMER_PREFIX + endpoint


def endpoint_of(consumers: tuple[str, ...]) -> str | None:
    """The endpoint an outbox entry is owed to, when it is a webhook entry (they are owed to one consumer)."""
    if len(consumers) == 1 and consumers[0].startswith(CONSUMER_PREFIX):
        return consumers[0][len(CONSUMER_PREFIX) :]
    return None


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def new_record(delivery: str, endpoint: str, body: str, event: Event, group: str, now: datetime) -> dict[str, Any]:
    """The record of a delivery nothing has been tried for yet (its outbox entry, `body` its event, was just
    read). The record keeps the event: a listing shows it, and a dead letter is sent again from it."""
    return {
        "id": delivery,
        "endpoint": endpoint,
        "event_id": event.id,
        "name": event.name,
        "at": event.at.isoformat(),
        "customer": _customer(event),
        "group": group,
        "state": "pending",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
        "next_try": now.isoformat(),
        "lease_until": None,
        "claim": None,
        "updated": now.isoformat(),
        "event": body,
    }


def _customer(event: Event) -> str | None:
    """Who the event is about: its `customer`, or the `id` of a customer-* event's customer."""
    found = event.payload.get("customer", event.payload.get("id") if event.name.startswith("customer-") else None)
    return found if isinstance(found, str) else None


def claimable(record: dict[str, Any], now: datetime) -> bool:
    """Due and not held: pending with its next try reached, or delivering under a lease that ran out."""
    if record["state"] == "pending":
        return _time(record["next_try"]) <= now  # type: ignore[operator]
    if record["state"] == "delivering":
        return _time(record["lease_until"]) <= now  # type: ignore[operator]
    return False


def claimed(record: dict[str, Any], endpoint: Endpoint, token: str, now: datetime) -> dict[str, Any]:
    """The record once this process starts attempt n+1 (an attempt whose sender died counts as made)."""
    lost = record["state"] == "delivering"
    return {
        **record,
        "state": "delivering",
        "attempts": record["attempts"] + 1,
        "last_error": "the process sending it stopped before it recorded an answer" if lost else record["last_error"],
        "lease_until": (now + endpoint.lease).isoformat(),
        "claim": token,
        "updated": now.isoformat(),
    }


def succeeded(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def retryable(status: int | None) -> bool:
    """Timeouts and connection errors (no status), 5xx, 408 and 429 are tried again; any other answer is the
    receiver refusing the message, which sending it again would not change: dead-lettered at once."""
    return status is None or status >= 500 or status in (408, 429)


def _jitter(delivery: str, attempt: int) -> float:
    digest = hashlib.sha256(f"{delivery}\0{attempt}".encode()).digest()
    return 1 - JITTER + 2 * JITTER * int.from_bytes(digest[:8], "big") / 2**64


def finished(
    record: dict[str, Any], endpoint: Endpoint, status: int | None, error: str | None, now: datetime
) -> tuple[dict[str, Any], timedelta | None]:
    """The record after an attempt answered `status` (None: timed out or no connection, `error` says why), and
    how long to keep it (None: until it is delivered). Delivered and dead records end their outbox entry."""
    attempts = record["attempts"]
    base = {**record, "last_status": status, "last_error": error, "lease_until": None, "claim": None}
    base["updated"] = now.isoformat()
    if succeeded(status):
        return {**base, "state": "delivered", "last_error": None, "next_try": None}, DELIVERED_KEEP
    schedule = endpoint.retry_schedule
    if retryable(status) and attempts <= len(schedule):
        wait = schedule[attempts - 1] * _jitter(record["id"], attempts)
        return {**base, "state": "pending", "next_try": (now + wait).isoformat()}, None
    # a dead letter's outbox entry goes; a retry writes it back from the record
    return {**base, "state": "dead", "next_try": None}, DEAD_KEEP


def requeued(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A dead letter sent again: pending now, with a fresh count of attempts (its message goes back to the
    outbox in the same commit)."""
    return {**record, "state": "pending", "attempts": 0, "next_try": now.isoformat(), "updated": now.isoformat()}


def view(record: dict[str, Any], event: Event, claim: str | None = None) -> WebhookDelivery:
    return WebhookDelivery(
        id=record["id"],
        endpoint=record["endpoint"],
        event=event,
        customer=record.get("customer"),
        state=record["state"],
        attempts=record["attempts"],
        last_status=record["last_status"],
        last_error=record["last_error"],
        next_try=_time(record["next_try"]),
        updated=_time(record["updated"]),
        claim=claim,
    )
