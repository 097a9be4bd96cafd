"""Metering: allow, check, track, explain; reservations (reserve, settle, release)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from limitr_py.service.bodies import AllowBody, CheckBody, ExactRoute, ReleaseBody, ReserveBody, SettleBody, TrackBody
from limitr_py.service.common import (
    IDEMPOTENT,
    decision_answer,
    engine_of,
    idempotency_key,
    needs,
    respond,
    service_of,
)

router = APIRouter(prefix="/v1", route_class=ExactRoute, tags=["metering"])


def _counted(request: Request, endpoint: str, allowed: bool) -> None:
    service_of(request).metrics.decided(endpoint, allowed)


@router.post("/allow", openapi_extra=IDEMPOTENT)
@needs("write")
def allow(body: AllowBody, request: Request) -> Response:
    """Decide and meter one call (`allow_explained`): `allowed`, and when denied the gate and the limit type that
    bound; `headroom` is how many more units the deciding limit took before the call."""
    engine = engine_of(request)
    decision = engine.allow_explained(
        body.customer,
        body.entitlement,
        body.value,
        event=body.event,
        cap=body.cap,
        overhead=body.overhead,
        idempotency_key=idempotency_key(request),
        gates=False,  # the answer names the deciding gate; GET /v1/explain lists them all
    )
    _counted(request, "allow", decision.allowed)
    return respond(decision_answer(decision))


@router.post("/check")
@needs("read")
def check(body: CheckBody, request: Request) -> Response:
    """Would `allow` pass? The same decision, with nothing changed and no events."""
    engine = engine_of(request)
    decision = engine.explain(
        body.customer, body.entitlement, body.value, cap=body.cap, context=body.context, overhead=body.overhead
    )
    _counted(request, "check", decision.allowed)
    return respond(decision_answer(decision))


@router.post("/track", openapi_extra=IDEMPOTENT)
@needs("write")
def track(body: TrackBody, request: Request) -> Response:
    """Record usage that already happened (it passes any limit); `recorded` is false for an unknown customer or
    entitlement."""
    engine = engine_of(request)
    recorded = engine.track(
        body.customer,
        body.entitlement,
        body.value,
        event=body.event,
        overhead=body.overhead,
        idempotency_key=idempotency_key(request),
    )
    return respond({"recorded": recorded})


@router.get("/explain")
@needs("read")
def explain(customer: str, entitlement: str, request: Request, value: str = "0") -> Response:
    """The `Decision` of a call of `value` units: every gate with its numbers."""
    engine = engine_of(request)
    return respond(engine.explain(customer, entitlement, value))


@router.post("/reserve", openapi_extra=IDEMPOTENT)
@needs("write")
def reserve(body: ReserveBody, request: Request) -> Response:
    """Hold room for a call before doing it: the hold's id, or null (`reserved: false`) when the call would not be
    allowed."""
    engine = engine_of(request)
    hold = engine.reserve(
        body.customer,
        body.entitlement,
        body.value,
        context=body.context,
        basis=body.basis,
        segment=body.segment,
        ttl=body.ttl,
        quantile=body.quantile,
        overhead=body.overhead,
        idempotency_key=idempotency_key(request),
    )
    return respond({"reserved": hold is not None, "hold_id": hold})


@router.post("/settle", openapi_extra=IDEMPOTENT)
@needs("write")
def settle(body: SettleBody, request: Request) -> Response:
    """Resolve a hold: drop it and record the actual usage."""
    engine = engine_of(request)
    settled = engine.settle(
        body.customer,
        body.entitlement,
        body.hold_id,
        body.value,
        event=body.event,
        overhead=body.overhead,
        basis=body.basis,
        segment=body.segment,
        idempotency_key=idempotency_key(request),
    )
    return respond({"settled": settled})


@router.post("/release", openapi_extra=IDEMPOTENT)
@needs("write")
def release(body: ReleaseBody, request: Request) -> Response:
    """Drop a hold without recording usage; `released` is false when there is no such hold."""
    engine = engine_of(request)
    released = engine.release(body.customer, body.entitlement, body.hold_id, idempotency_key=idempotency_key(request))
    return respond({"released": released})
