"""Webhook delivery for `limitr serve`, signed with Standard Webhooks.

Each round (service/background.py runs them, in a thread of each worker process) the dispatcher claims what is
due (`Limitr.claim_webhooks`: every process of a fleet can run one, the claims keep them from sending the same
message twice in the normal case), sends the claimed messages in a small pool of threads (one slow endpoint
does not hold up the others), and records each outcome (`Limitr.finish_webhook`). Requests never wait for it:
an `allow()` only writes the outbox entry.

A message is `POST`ed as JSON with the headers of the Standard Webhooks specification, signed by the
`standardwebhooks` package:

    webhook-id: whd_…           the delivery id: the same on every retry of the message (de-duplicate on it)
    webhook-timestamp: 1767225600
    webhook-signature: v1,…

    {"id": "<event id>", "type": "<name as delivered>", "timestamp": "<ISO 8601>", "data": {…}}

`data` is the event's payload with every number as an exact decimal string.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx

from limitr_py import WebhookDelivery, __version__
from limitr_py.limitr import Limitr
from limitr_py.service import wire
from limitr_py.service.webhook_config import EndpointConfig, WebhooksConfig

log = logging.getLogger("limitr.webhooks")
BATCH = 64
"""Deliveries claimed per round (at most one per customer and endpoint: the next is sent once it is acknowledged)."""
SENDERS = 8


def register(engine: Limitr, config: WebhooksConfig) -> None:
    """Make `engine`'s commits owe the configured endpoints their events (raises InvalidArgumentError for an
    event name the policy does not have)."""
    for endpoint in config.endpoints:
        engine.add_webhook(
            endpoint.name, endpoint.events, retry_schedule=endpoint.retry_schedule, timeout=endpoint.timeout
        )


def message(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    return wire.dumps({"id": event.id, "type": event.name, "timestamp": event.at, "data": event.payload})


def send(
    client: httpx.Client, endpoint: EndpointConfig, delivery: WebhookDelivery, now: datetime
) -> tuple[int | None, str | None]:
    """One attempt: the receiver's status, or (None, why) when it timed out or could not be reached."""
    body = message(delivery)
    headers = {
        "content-type": "application/json",
        "user-agent": f"limitr/{__version__}",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": endpoint.signer.sign(delivery.id, now, body),
    }
    try:
        answer = client.post(endpoint.url, content=body, headers=headers, timeout=endpoint.timeout_seconds)
    except httpx.TimeoutException:
        return None, f"no answer within {endpoint.timeout}"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return answer.status_code, None


class Dispatcher:
    """Sends the webhooks of an engine, one round at a time (service/background.py runs the rounds)."""

    def __init__(
        self, config: WebhooksConfig, outcome: Callable[[str, str], None] = lambda endpoint, what: None
    ) -> None:
        """`outcome(endpoint, what)` is told of each attempt: delivered, retry, dead, or lost (another process
        had taken the delivery over)."""
        self.config, self.outcome = config, outcome
        self.endpoints = {e.name: e for e in config.endpoints}
        self._client = httpx.Client(follow_redirects=False)
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="limitr-webhook-send")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def round(self, engine: Limitr) -> int:
        """Claim, send and record one batch; how many were claimed."""
        claimed = engine.claim_webhooks(BATCH)

        def attempt(delivery: WebhookDelivery) -> None:
            endpoint = self.endpoints[delivery.endpoint]
            status, error = send(self._client, endpoint, delivery, engine.clock.now())
            done = engine.finish_webhook(delivery, status=status, error=error)
            self.outcome(
                delivery.endpoint, "lost" if done is None else "retry" if done.state == "pending" else done.state
            )
            if done is None:
                log.warning("webhook %s to `%s`: another process took it over", delivery.id, delivery.endpoint)
            elif done.state == "dead":
                log.error(
                    "webhook %s to `%s` dead-lettered after %d attempts: %s",
                    delivery.id, delivery.endpoint, done.attempts, error or f"status {status}",
                )  # fmt: skip

        for _ in self._pool.map(attempt, claimed):
            pass
        return len(claimed)
