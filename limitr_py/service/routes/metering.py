"""Metering: allow, check, track, explain; reservations (reserve, settle, release)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from limitr_py.service.bodies import AllowBody, CheckBody, ExactRoute, ReleaseBody, ReserveBody, SettleBody, TrackBody
from limitr_py.service.common import (
    IdempotencyKey,
    ReadEngine,
    WriteEngine,
    decision_answer,
    respond,
    service_of,
)

router = APIRouter(prefix="/v1", route_class=ExactRoute, tags=["metering"])


def _counted(request: Request, endpoint: str, allowed: bool) -> None:
    service_of(request).metrics.decided(endpoint, allowed)


@router.post("/allow")
def allow(body: AllowBody, engine: WriteEngine, request: Request, key: IdempotencyKey = None) -> Response:
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


@router.post("/check")
def check(body: CheckBody, engine: ReadEngine, request: Request) -> Response:
    """Would `allow` pass? The same decision, with nothing changed and no events."""
    decision = engine.explain(
        body.customer, body.entitlement, body.value, cap=body.cap, context=body.context, overhead=body.overhead
    )
    _counted(request, "check", decision.allowed)
    return respond(decision_answer(decision))


@router.post("/track")
def track(body: TrackBody, engine: WriteEngine, key: IdempotencyKey = None) -> Response:
    """Record usage that already happened (it passes any limit); `recorded` is false for an unknown customer or
    entitlement."""
    recorded = engine.track(
        body.customer, body.entitlement, body.value, event=body.event, overhead=body.overhead, idempotency_key=key
    )
    return respond({"recorded": recorded})


@router.get("/explain")
def explain(customer: str, entitlement: str, engine: ReadEngine, value: str = "0") -> Response:
    """The `Decision` of a call of `value` units: every gate with its numbers."""
    return respond(engine.explain(customer, entitlement, value))


@router.post("/reserve")
def reserve(body: ReserveBody, engine: WriteEngine, key: IdempotencyKey = None) -> Response:
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


@router.post("/settle")
def settle(body: SettleBody, engine: WriteEngine, key: IdempotencyKey = None) -> Response:
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


@router.post("/release")
def release(body: ReleaseBody, engine: WriteEngine, key: IdempotencyKey = None) -> Response:
    """Drop a hold without recording usage; `released` is false when there is no such hold."""
    released = engine.release(body.customer, body.entitlement, body.hold_id, idempotency_key=key)
    return respond({"released": released})
