"""The ASGI application: the `/v1` routers over one `Limitr` engine, `/healthz`, `/metrics`, `/openapi.json`.

Endpoints (service/routes/) are plain functions (FastAPI runs them in its thread pool: the engine is thread-safe
and its store calls block). Each checks the caller's key, calls one engine method with the request's fields as
its arguments and answers the result as exact JSON (wire.py); every error is a problem document (problems.py).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from limitr_py import __version__
from limitr_py.compile import load_policy
from limitr_py.errors import InvalidArgumentError, PolicyError
from limitr_py.limitr import Limitr
from limitr_py.service import keys as api_keys
from limitr_py.service import problems, reloading, webhook_config, webhooks
from limitr_py.service.background import Background
from limitr_py.service.bodies import ExactRoute
from limitr_py.service.idempotency import IdempotentAnswers
from limitr_py.service.limits import BodyLimit
from limitr_py.service.metrics import Measured, Metrics
from limitr_py.service.routes import billing, customers, dashboard, deliveries, metering, operations
from limitr_py.stores import Store, open_store

ENV_POLICY, ENV_STORE, ENV_KEYS, ENV_WATCH, ENV_WEBHOOKS, ENV_HISTORY = (
    "LIMITR_SERVE_POLICY",
    "LIMITR_SERVE_STORE",
    "LIMITR_SERVE_API_KEYS",
    "LIMITR_SERVE_WATCH",
    "LIMITR_SERVE_WEBHOOKS",
    "LIMITR_SERVE_HISTORY",
)
"""How `limitr serve` hands its options to each worker process (`app_from_environment`)."""
log = logging.getLogger("limitr.service")
POLL_SECONDS = 1.0
"""Without a webhooks file, how often the background work looks for history other processes committed."""


class Service:
    """What the endpoints share: the engine of the policy in force, the keys (None: no authentication), the
    metrics, the webhook endpoints (None: none). `reload()` swaps the engine for one of the policy file as it is
    now, on the same store."""

    def __init__(
        self,
        policy_path: Path | None,
        store: Store,
        engine: Limitr,
        keys: list[api_keys.ApiKey] | None,
        hooks: webhook_config.WebhooksConfig | None = None,
        history: bool = True,
    ) -> None:
        self.policy_path = policy_path
        self.raw_store = store  # shared by every engine a reload makes: no new connections
        self.hooks, self.history = hooks, history
        self._configure(engine)
        self.engine = engine
        self.keys = keys
        self.reload_error: str | None = None
        self._reload_lock = threading.Lock()
        self.retried_before = 0  # retries counted by the engines a reload replaced
        self.metrics = Metrics(lambda: self.retried_before + self.engine.conflicts_retried)

    def _configure(self, engine: Limitr) -> None:
        """What every engine of the service does besides the policy: keep the customers' event history (the
        dashboard shows it) and owe the webhook endpoints their events (InvalidArgumentError when an endpoint
        wants an event the policy does not have)."""
        if self.history:
            engine.keep_event_history()
        if self.hooks is not None:
            webhooks.register(engine, self.hooks)

    def reload_state(self) -> dict[str, Any]:
        return {} if self.reload_error is None else {"reload": "failed", "reload_error": self.reload_error}

    def reload(self) -> bool:
        """Read, validate and compile the policy file. Valid: new requests get an engine of it (requests in flight
        finish on the one they started with). Invalid: the policy in force stays, every diagnostic is logged
        with its file:line:col, and /healthz reports the failed reload until a reload succeeds."""
        assert self.policy_path is not None
        with self._reload_lock:
            try:
                compiled = load_policy(self.policy_path)
            except PolicyError as exc:
                self.reload_error = exc.diagnostics[0].headline() if exc.diagnostics else str(exc)
                for d in exc.diagnostics:
                    log.error("policy reload refused, the policy in force stays: %s", d.headline())
                return False
            if compiled.fingerprint != self.engine.fingerprint:
                engine = Limitr(compiled, store=self.raw_store)
                try:
                    self._configure(engine)
                except InvalidArgumentError as exc:  # an endpoint wants a notification the policy dropped
                    self.reload_error = f"{self.policy_path}: {exc}"
                    log.error("policy reload refused, the policy in force stays: %s", self.reload_error)
                    return False
                self.retried_before += self.engine.conflicts_retried
                self.engine = engine
                log.info("policy reloaded: %s (fingerprint %s)", self.policy_path, compiled.fingerprint)
            self.reload_error = None
            return True


def create_app(
    policy_path: str | Path,
    store: str | None = None,
    *,
    api_keys_file: str | Path | None = None,
    watch: bool = False,
    webhooks_file: str | Path | None = None,
    history: bool = True,
) -> FastAPI:
    """The service for the policy at `policy_path`, on the store at URL `store` (the CLI's SQLite file
    `./limitr.db` by default). With `api_keys_file`, every `/v1` request needs a key of the right scope. The
    policy is reloaded on SIGHUP, and with `watch` whenever the file changes (checked every second). With
    `webhooks_file`, its `webhooks` section's endpoints get the events they want (service/webhooks.py). With
    `history` (the default), each customer's recent events are kept for the dashboard (engine/history.py)."""
    path = Path(policy_path)
    compiled = load_policy(path)
    keys = api_keys.read_keys(Path(api_keys_file)) if api_keys_file is not None else None
    hooks = webhook_config.load(Path(webhooks_file)) if webhooks_file is not None else None
    raw = open_store(store or "sqlite:///limitr.db")
    return _application(Service(path, raw, Limitr(compiled, store=raw), keys, hooks, history), watch)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (it does not depend on the policy): what `schemas/openapi.json` holds."""
    tiny = {"policy": {"credits": {"c": {}}, "plans": {"p": {"default": True, "entitlements": {"e": {}}}}}}
    raw = open_store("memory://")
    document: dict[str, Any] = _application(Service(None, raw, Limitr.new(tiny, store=raw), None), False).openapi()
    return document


def _application(service: Service, watch: bool) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = None
        if service.policy_path is not None:
            reloading.on_sighup(service.reload)
            if watch:
                watcher = reloading.Watcher(service.policy_path, service.reload)
        hooks = service.hooks
        work = Background(
            lambda: service.engine,
            webhooks.Dispatcher(hooks, service.metrics.webhook_attempts_of) if hooks is not None else None,
            hooks.poll_seconds if hooks is not None else POLL_SECONDS,
        )
        work.start()
        yield
        if watcher is not None:
            watcher.stop()
        work.stop()
        service.raw_store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="limitr",
        version=__version__,
        description="limitr_py's engine over HTTP: every answer is the Python API's. Numbers are exact: send "
        "integers, decimals or strings; every number in an answer is a string.",
    )
    app.state.service = service
    app.router.route_class = ExactRoute
    problems.install(app)
    app.add_middleware(IdempotentAnswers, engine=lambda: service.engine)  # inside BodyLimit: bodies are bounded
    app.add_middleware(BodyLimit)
    app.add_middleware(Measured, metrics=service.metrics)

    routers = (
        metering.router,
        customers.router,
        billing.router,
        deliveries.router,
        operations.router,
        dashboard.router,
    )
    for routes in routers:
        app.include_router(routes)
    return app


def app_from_environment() -> FastAPI:
    """The application of a `limitr serve` worker process (uvicorn's factory), from the serve command's options."""
    return create_app(
        os.environ[ENV_POLICY],
        os.environ.get(ENV_STORE),
        api_keys_file=os.environ.get(ENV_KEYS),
        watch=os.environ.get(ENV_WATCH) == "1",
        webhooks_file=os.environ.get(ENV_WEBHOOKS),
        history=os.environ.get(ENV_HISTORY) != "0",
    )
