"""Metering: allow, check, track, explain; reservations (reserve, settle, release)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from limitr_py.service.bodies import AllowBody, CheckBody, ExactRoute, ReleaseBody, ReserveBody, SettleBody, TrackBody
from limitr_py.service.common import (
    READ,
    WRITE,
    Engine,
    IdempotencyKey,
    decision_answer,
    respond,
    service_of,
)

router = APIRouter(prefix="/v1", route_class=ExactRoute, tags=["metering"])


def _counted(request: Request, endpoint: str, allowed: bool) -> None:
    service_of(request).metrics.decisions.labels(endpoint, "allowed" if allowed else "denied").inc()


@router.post("/allow", dependencies=[WRITE])
def allow(body: AllowBody, engine: Engine, request: Request, key: IdempotencyKey = None) -> Response:
    """Decide and meter one call (`allow_explained`): `allowed`, and when denied the gate and the limit type that
    bound; `headroom` is how many more units the deciding limit took before the call."""
    decision = engine.allow_explained(
        body.customer,
        body.entitlement,
        body.value,
        event=body.event,
        cap=body.cap,
        overhead=body.overhead,
        idempotency_key=key,
    )
    _counted(request, "allow", decision.allowed)
    return respond(decision_answer(decision))


@router.post("/check", dependencies=[READ])
def check(body: CheckBody, engine: Engine, request: Request) -> Response:
    """Would `allow` pass? The same decision, with nothing changed and no events."""
    decision = engine.explain(
        body.customer, body.entitlement, body.value, cap=body.cap, context=body.context, overhead=body.overhead
    )
    _counted(request, "check", decision.allowed)
    return respond(decision_answer(decision))


@router.post("/track", dependencies=[WRITE])
def track(body: TrackBody, engine: Engine, key: IdempotencyKey = None) -> Response:
    """Record usage that already happened (it passes any limit); `recorded` is false for an unknown customer or
    entitlement."""
    recorded = engine.track(
        body.customer, body.entitlement, body.value, event=body.event, overhead=body.overhead, idempotency_key=key
    )
    return respond({"recorded": recorded})


@router.get("/explain", dependencies=[READ])
def explain(customer: str, entitlement: str, engine: Engine, value: str = "0") -> Response:
    """The `Decision` of a call of `value` units: every gate with its numbers."""
    return respond(engine.explain(customer, entitlement, value))


@router.post("/reserve", dependencies=[WRITE])
def reserve(body: ReserveBody, engine: Engine, key: IdempotencyKey = None) -> Response:
    """Hold room for a call before doing it: the hold's id, or null (`reserved: false`) when the call would not be
    allowed."""
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
        idempotency_key=key,
    )
    return respond({"reserved": hold is not None, "hold_id": hold})


@router.post("/settle", dependencies=[WRITE])
def settle(body: SettleBody, engine: Engine, key: IdempotencyKey = None) -> Response:
    """Resolve a hold: drop it and record the actual usage."""
    settled = engine.settle(
        body.customer,
        body.entitlement,
        body.hold_id,
        body.value,
        event=body.event,
        overhead=body.overhead,
        basis=body.basis,
        segment=body.segment,
        idempotency_key=key,
    )
    return respond({"settled": settled})


@router.post("/release", dependencies=[WRITE])
def release(body: ReleaseBody, engine: Engine, key: IdempotencyKey = None) -> Response:
    """Drop a hold without recording usage; `released` is false when there is no such hold."""
    released = engine.release(body.customer, body.entitlement, body.hold_id, idempotency_key=key)
    return respond({"released": released})
