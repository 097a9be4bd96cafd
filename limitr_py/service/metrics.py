"""`/metrics`: Prometheus counters and histograms of one worker process, and the middleware that fills them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """One registry per application (two apps in one process do not mix their numbers). `retried` reads the
    engine's count of attempts made again after a conflict, when scraped."""

    def __init__(self, retried: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "limitr_http_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.decisions = Counter(
            "limitr_decisions", "Metering and check answers by endpoint and decision", ["endpoint", "decision"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "limitr_http_request_seconds", "Time to answer, by endpoint", ["endpoint"], registry=self.registry
        )
        self.store_errors = Counter("limitr_store_errors", "Requests failed closed: the store", registry=self.registry)
        self.conflicts = Counter(
            "limitr_conflicts", "Requests that gave up after the engine's retries", registry=self.registry
        )
        self.webhook_attempts = Counter(
            "limitr_webhook_attempts", "Webhook attempts by endpoint and outcome (delivered, retry, dead, lost)",
            ["endpoint", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Retries(retried))
        # The labelled children, found once: `labels()` costs more than the increment it leads to. Both keys are
        # bounded: routes by the application, statuses by HTTP.
        self._answered: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._decided: dict[tuple[str, bool], Any] = {}

    def answered(self, endpoint: str, status: int, seconds: float) -> None:
        """One request to `endpoint` answered with `status` after `seconds`."""
        children = self._answered.get((endpoint, status))
        if children is None:
            children = self.requests.labels(endpoint, str(status)), self.latency.labels(endpoint)
            self._answered[endpoint, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def decided(self, endpoint: str, allowed: bool) -> None:
        """One metering or check answer of `endpoint`."""
        child = self._decided.get((endpoint, allowed))
        if child is None:
            child = self.decisions.labels(endpoint, "allowed" if allowed else "denied")
            self._decided[endpoint, allowed] = child
        child.inc()

    def webhook_attempts_of(self, endpoint: str, outcome: str) -> None:
        self.webhook_attempts.labels(endpoint, outcome).inc()


class _Retries(Collector):
    """`limitr_conflicts_retried_total`: attempts the engine made again after a conflict."""

    def __init__(self, retried: Callable[[], int]) -> None:
        self.retried = retried

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("limitr_conflicts_retried", "Attempts made again after a conflict", self.retried())


class Measured:
    """Requests by endpoint and status, and their latency (plain ASGI: no stream or task per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.answered(endpoint, status, time.perf_counter() - started)
