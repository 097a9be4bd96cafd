"""Webhook deliveries: list them, look at one, send a dead letter again."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from limitr_py import WebhookDelivery
from limitr_py.errors import InvalidArgumentError
from limitr_py.limitr import Limitr
from limitr_py.service.bodies import ExactRoute
from limitr_py.service.common import engine_of, known, needs, respond
from limitr_py.service.problems import Problem

router = APIRouter(
    prefix="/v1/webhooks/deliveries",
    route_class=ExactRoute,
    tags=["webhooks"],
)


def shown(delivery: WebhookDelivery) -> dict[str, Any]:
    event = delivery.event
    return {
        "id": delivery.id,
        "endpoint": delivery.endpoint,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_try": delivery.next_try,
        "updated": delivery.updated,
        "customer": delivery.customer,
        "event": {"id": event.id, "name": event.name, "at": event.at, "payload": event.payload},
    }


@router.get("")
@needs("read")
def list_deliveries(
    request: Request,
    state: Literal["pending", "delivering", "delivered", "dead"] | None = None,
    endpoint: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Deliveries, newest event first: those waiting (`pending`, with their next try), being sent, delivered
    (kept 7 days) and dead letters (kept 30 days)."""
    engine = engine_of(request)
    found = engine.webhook_deliveries(state=state, endpoint=endpoint, limit=limit)
    return respond({"deliveries": [shown(d) for d in found]})


def _found(engine: Limitr, id: str) -> WebhookDelivery:
    try:
        delivery = engine.webhook_delivery(id)
    except InvalidArgumentError:  # not a delivery id at all
        delivery = None
    return known(delivery, f"delivery `{id[:80]}`")  # type: ignore[no-any-return]


@router.get("/{id}")
@needs("read")
def get_delivery(id: str, request: Request) -> Response:
    engine = engine_of(request)
    return respond(shown(_found(engine, id)))


@router.post("/{id}/retry")
@needs("admin")
def retry_delivery(id: str, request: Request) -> Response:
    """Send a dead letter again, from its first attempt; 409 for a delivery that is not dead."""
    engine = engine_of(request)
    _found(engine, id)
    try:
        again = engine.retry_webhook(id)
    except InvalidArgumentError as exc:
        raise Problem(409, "not_dead", str(exc)) from None
    return respond(shown(known(again, f"delivery `{id}`")))
