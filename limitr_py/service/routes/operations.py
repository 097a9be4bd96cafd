"""`/healthz` for load balancers and `/metrics` for Prometheus (neither needs a key: put them behind the proxy)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from limitr_py import __version__
from limitr_py.errors import StoreError
from limitr_py.service.common import engine_of, respond, service_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """200 when the store answers, 503 (fail closed) when it does not; the policy's fingerprint and version."""
    engine = engine_of(request)
    service = service_of(request)
    body = {"version": __version__, "policy": engine.fingerprint, "store": engine.store.url, **service.reload_state()}
    try:
        engine.store.read(["healthz"])
    except StoreError as exc:
        service.metrics.store_errors.inc()
        return respond({**body, "status": "unavailable", "detail": str(exc).splitlines()[0]}, 503)
    return respond({**body, "status": "ok"})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text: requests by endpoint and status, decisions, latency, store errors, conflicts (per worker
    process)."""
    return Response(generate_latest(service_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
