"""The ASGI application: `/v1` endpoints over one `Limitr` engine, `/healthz`, `/metrics`, `/openapi.json`.

Endpoints are plain functions (FastAPI runs them in its thread pool: the engine is thread-safe and its store
calls block). Each checks the caller's key, calls one engine method with the request's fields as its arguments
and answers the result as exact JSON (wire.py); every error is a problem document (problems.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from limitr_py import __version__
from limitr_py.errors import StoreError
from limitr_py.limitr import Limitr
from limitr_py.service import keys as api_keys
from limitr_py.service import problems, wire
from limitr_py.service.bodies import AllowBody, CheckBody, CustomerBody, ExactRoute, TrackBody
from limitr_py.service.limits import BodyLimit
from limitr_py.service.problems import Problem

ENV_POLICY, ENV_STORE, ENV_KEYS = "LIMITR_SERVE_POLICY", "LIMITR_SERVE_STORE", "LIMITR_SERVE_API_KEYS"
"""How `limitr serve` hands its options to each worker process (`app_from_environment`)."""


class Service:
    """What the endpoints share: the engine, the keys (None: no authentication), the metrics."""

    def __init__(self, engine: Limitr, keys: list[api_keys.ApiKey] | None) -> None:
        self.engine = engine
        self.keys = keys
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "limitr_http_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "limitr_decisions",
            "Metering and check answers by endpoint and decision",
            ["endpoint", "decision"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "limitr_http_request_seconds", "Time to answer, by endpoint", ["endpoint"], registry=self.registry
        )
        self.store_errors = Counter("limitr_store_errors", "Requests failed closed: the store", registry=self.registry)
        self.conflicts = Counter(
            "limitr_conflicts", "Requests that gave up after the engine's retries", registry=self.registry
        )


def create_app(
    policy_path: str | Path,
    store: str | None = None,
    *,
    api_keys_file: str | Path | None = None,
) -> FastAPI:
    """The service for the policy at `policy_path`, on the store at URL `store` (the CLI's SQLite file
    `./limitr.db` by default). With `api_keys_file`, every `/v1` request needs a key of the right scope."""
    engine = Limitr.new(Path(policy_path), store=store or "sqlite:///limitr.db")
    keys = api_keys.read_keys(Path(api_keys_file)) if api_keys_file is not None else None
    return _application(Service(engine, keys))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (it does not depend on the policy): what `schemas/openapi.json` holds."""
    tiny = {"policy": {"credits": {"c": {}}, "plans": {"p": {"default": True, "entitlements": {"e": {}}}}}}
    document: dict[str, Any] = _application(Service(Limitr.new(tiny), None)).openapi()
    return document


def _application(service: Service) -> FastAPI:
    engine = service.engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()

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
    app.add_middleware(BodyLimit)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        service.requests.labels(endpoint, str(response.status_code)).inc()
        service.latency.labels(endpoint).observe(time.perf_counter() - started)
        if response.status_code == 503:
            service.store_errors.inc()
        elif response.status_code == 409:
            service.conflicts.inc()
        return response

    _routes(app, service)
    return app


def app_from_environment() -> FastAPI:
    """The application of a `limitr serve` worker process (uvicorn's factory), from the serve command's options."""
    return create_app(os.environ[ENV_POLICY], os.environ.get(ENV_STORE), api_keys_file=os.environ.get(ENV_KEYS))


def _respond(value: Any, status: int = 200) -> Response:
    return Response(wire.dumps(value), status, media_type="application/json")


def _scope(needed: str) -> Callable[..., None]:
    """A dependency: the request's `Authorization: Bearer KEY` must name a key of at least `needed` scope."""

    def check(request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> None:
        keys = request.app.state.service.keys
        if keys is None:
            return
        challenge = {"WWW-Authenticate": 'Bearer realm="limitr"'}
        if authorization is None or not authorization.startswith("Bearer "):
            raise Problem(401, "unauthorized", "send `Authorization: Bearer KEY`", headers=challenge)
        found = api_keys.find(keys, authorization[len("Bearer ") :].strip())
        if found is None:
            raise Problem(401, "unauthorized", "the key is not valid", headers=challenge)
        if not api_keys.allows(found, needed):
            raise Problem(403, "forbidden", f"the key `{found.name}` has scope `{found.scope}`; this needs `{needed}`")

    return check


READ, WRITE, ADMIN = (Depends(_scope(s)) for s in api_keys.SCOPES)


def _decision_answer(decision: Any) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "gate": decision.gate,
        "limit_type": decision.limit_type,
        "headroom": decision.headroom,
    }


def _routes(app: FastAPI, service: Service) -> None:
    engine = service.engine

    def counted(endpoint: str, allowed: bool) -> None:
        service.decisions.labels(endpoint, "allowed" if allowed else "denied").inc()

    # -- metering ------------------------------------------------------------------------------------------

    @app.post("/v1/allow", dependencies=[WRITE], tags=["metering"])
    def allow(body: AllowBody) -> Response:
        """Decide and meter one call (`allow_explained`): `allowed`, and when denied the gate and limit type
        that bound."""
        decision = engine.allow_explained(
            body.customer, body.entitlement, body.value, event=body.event, cap=body.cap, overhead=body.overhead
        )
        counted("allow", decision.allowed)
        return _respond(_decision_answer(decision))

    @app.post("/v1/check", dependencies=[READ], tags=["metering"])
    def check(body: CheckBody) -> Response:
        """Would `allow` pass? The same decision, nothing changed, no events."""
        decision = engine.explain(
            body.customer, body.entitlement, body.value, cap=body.cap, context=body.context, overhead=body.overhead
        )
        counted("check", decision.allowed)
        return _respond(_decision_answer(decision))

    @app.post("/v1/track", dependencies=[WRITE], tags=["metering"])
    def track(body: TrackBody) -> Response:
        """Record usage that already happened (passes any limit); `recorded` is false for an unknown customer or
        entitlement."""
        recorded = engine.track(body.customer, body.entitlement, body.value, event=body.event, overhead=body.overhead)
        return _respond({"recorded": recorded})

    @app.get("/v1/explain", dependencies=[READ], tags=["metering"])
    def explain(customer: str, entitlement: str, value: Annotated[str, Query()] = "0") -> Response:
        """The `Decision` of a call with `value` units: every gate with its numbers."""
        return _respond(engine.explain(customer, entitlement, value))

    # -- customers and reads -------------------------------------------------------------------------------

    @app.post("/v1/customers", dependencies=[ADMIN], tags=["customers"], status_code=201)
    def create_customer(body: CustomerBody) -> Response:
        """Create a customer (an existing id is updated). 422 when no plan resolves."""
        customer = engine.create_customer(
            body.id, body.plan, body.type, body.label, body.refs, body.alt_ids, body.metadata
        )
        if customer is None:
            raise Problem(
                422, "invalid_argument", f"no plan resolves for `{body.id}`: name a plan or a ref that has one"
            )
        return _respond(customer, 201)

    @app.get("/v1/customers/{id}", dependencies=[READ], tags=["customers"])
    def get_customer(id: str) -> Response:
        return _respond(_known(engine.customer(id), id))

    @app.delete("/v1/customers/{id}", dependencies=[ADMIN], tags=["customers"], status_code=204)
    def delete_customer(id: str) -> Response:
        if not engine.delete_customer(id):
            raise Problem(404, "not_found", f"no customer `{id}`")
        return Response(status_code=204)

    @app.get("/v1/customers/{id}/entitlements/{entitlement}", dependencies=[READ], tags=["reads"])
    def entitlement(id: str, entitlement: str) -> Response:
        """The meter in one object: value, remaining, limit, allowance and when it resets (null for what does not
        apply: an observe limit has no remaining, a feature flag has no meter)."""
        _known(engine.customer(id), id)
        decision = engine.explain(id, entitlement)
        if decision.gate == "entitlement":
            raise Problem(404, "not_found", f"`{entitlement}` is not an entitlement of `{id}`'s plan")
        return _respond(
            {
                "customer": id,
                "entitlement": entitlement,
                "feature": decision.gate == "feature",
                "value": engine.value(id, entitlement),
                "remaining": engine.remaining(id, entitlement),
                "limit": engine.limit(id, entitlement),
                "allowance": engine.allowance(id, entitlement),
                "resets": engine.resets(id, entitlement),
            }
        )

    @app.get("/v1/customers/{id}/invoice", dependencies=[READ], tags=["reads"])
    def invoice(id: str, period: str = "current") -> Response:
        """The invoice of the `current` or `previous` period, or of the period containing an ISO 8601 time;
        amounts in minor units of the currency."""
        at: str | datetime = period
        if period not in ("current", "previous"):
            try:
                at = datetime.fromisoformat(period.replace("Z", "+00:00"))
            except ValueError:
                raise Problem(
                    422, "invalid_argument", f"`period`: current, previous or an ISO 8601 time: `{period}`"
                ) from None
        return _respond(_known(engine.invoice(id, period=at), id))

    # -- operations ----------------------------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"])
    def healthz() -> Response:
        """200 when the store answers; 503 (fail closed) when it does not. With the policy's fingerprint."""
        body: dict[str, Any] = {"version": __version__, "policy": engine.fingerprint, "store": engine.store.url}
        try:
            engine.store.read(["healthz"])
        except StoreError as exc:
            return _respond({**body, "status": "unavailable", "detail": str(exc).splitlines()[0]}, 503)
        return _respond({**body, "status": "ok"})

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Response:
        """Prometheus text: requests by endpoint and status, decisions, latency, store errors, conflicts."""
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)


def _known(value: Any, id: str) -> Any:
    if value is None:
        raise Problem(404, "not_found", f"no customer `{id}`")
    return value
