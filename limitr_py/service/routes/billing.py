"""Caps, grants and top-ups, and the billing controls of Owostack and Autumn."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from limitr_py.engine.arguments import UNSET  # "leave as it is", as the Python API takes it
from limitr_py.service.bodies import (
    BillingControlsBody,
    CapBody,
    ExactRoute,
    FeatureConfigBody,
    GrantBody,
    OverageLimitBody,
    TopupBody,
)
from limitr_py.service.common import IDEMPOTENT, done, engine_of, idempotency_key, known, needs, respond
from limitr_py.service.problems import Problem

router = APIRouter(prefix="/v1/customers/{id}", route_class=ExactRoute, tags=["billing"])


@router.post("/caps", status_code=201, openapi_extra=IDEMPOTENT)
@needs("admin")
def add_cap(id: str, body: CapBody, request: Request) -> Response:
    """A spend cap: a ceiling of `value` in `credit` (runes by default) on what the customer's calls consume."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    fields = body.model_dump(exclude={"value"})
    cap = engine.add_customer_cap(id, body.value, **fields, idempotency_key=idempotency_key(request))
    if cap is None:
        raise Problem(409, "denied", "the cap was not added: its id is taken, or its credit has no path to runes")
    return respond(cap, 201)


@router.get("/caps/{cap_id}")
@needs("read")
def get_cap(id: str, cap_id: str, request: Request) -> Response:
    engine = engine_of(request)
    return respond(known(engine.customer_cap(id, cap_id), f"cap `{cap_id}` of `{id}`"))


@router.post("/caps/{cap_id}/reset", openapi_extra=IDEMPOTENT)
@needs("admin")
def reset_cap(id: str, cap_id: str, request: Request) -> Response:
    """Zero the cap's meter and start its period now."""
    engine = engine_of(request)
    done(
        engine.reset_customer_cap(id, cap_id, idempotency_key=idempotency_key(request)),
        404,
        "not_found",
        f"no cap `{cap_id}` of `{id}`",
    )
    return respond(engine.customer_cap(id, cap_id))


@router.delete("/caps/{cap_id}", status_code=204, openapi_extra=IDEMPOTENT)
@needs("admin")
def remove_cap(id: str, cap_id: str, request: Request) -> Response:
    engine = engine_of(request)
    done(
        engine.remove_customer_cap(id, cap_id, idempotency_key=idempotency_key(request)),
        404,
        "not_found",
        f"no cap `{cap_id}` of `{id}`",
    )
    return Response(status_code=204)


@router.post("/grants", status_code=201, openapi_extra=IDEMPOTENT)
@needs("admin")
def grant(id: str, body: GrantBody, request: Request) -> Response:
    """A balance of `credit` (promo credit) that covers usage past the limits until `expires_on`."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    made = engine.grant(
        id,
        body.credit,
        body.value,
        expires_on=body.expires_on,
        grant_id=body.grant_id,
        metadata=body.metadata,
        idempotency_key=idempotency_key(request),
    )
    if made is None:
        raise Problem(409, "denied", f"the grant was not made: `{body.credit}` is unknown or the grant id is taken")
    return respond(made, 201)


@router.get("/grants")
@needs("read")
def grants(id: str, request: Request) -> Response:
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    return respond(engine.grants(id))


@router.post("/topups", openapi_extra=IDEMPOTENT)
@needs("admin")
def topup(id: str, body: TopupBody, request: Request) -> Response:
    """Grant one purchase of a top-up of the customer's plan (call it after payment)."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    applied = engine.apply_customer_topup(id, body.topup, idempotency_key=idempotency_key(request))
    done(applied, 422, "invalid_argument", f"no top-up `{body.topup}` in the plan")
    return respond(engine.grants(id))


@router.get("/credits/{credit}")
@needs("read")
def credit_remaining(id: str, credit: str, request: Request) -> Response:
    """The customer's whole grant balance expressed in `credit`."""
    engine = engine_of(request)
    return respond({"credit": credit, "remaining": known(engine.credit_remaining(id, credit), f"customer `{id}`")})


@router.put("/feature_config/{feature}")
@needs("admin")
def feature_config(id: str, feature: str, body: FeatureConfigBody, request: Request) -> Response:
    """Owostack's `set_feature_config`: one customer's exception for one feature."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    given = body.model_fields_set
    engine.set_feature_config(
        id,
        feature,
        overage=body.overage if "overage" in given else UNSET,
        max_overage_units=body.max_overage_units if "max_overage_units" in given else UNSET,
    )
    return respond(engine.billing_config(id))


@router.put("/overage_limit")
@needs("admin")
def overage_limit(id: str, body: OverageLimitBody, request: Request) -> Response:
    """Owostack's `set_overage_limit`: a customer-wide cap on billable overage, in minor units of the currency."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    engine.set_overage_limit(id, max_overage_amount=body.max_overage_amount, on_limit_reached=body.on_limit_reached)
    return respond(engine.billing_config(id))


@router.post("/billing_controls")
@needs("admin")
def billing_controls(id: str, body: BillingControlsBody, request: Request) -> Response:
    """Autumn's `update_billing_controls`, with its field names; each list given replaces the customer's."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    engine.update_billing_controls(id, **body.model_dump(exclude_unset=True))
    return respond(engine.billing_config(body.entity_id or id))


@router.get("/billing_config")
@needs("read")
def billing_config(id: str, request: Request) -> Response:
    """The customer's billing controls as they apply."""
    engine = engine_of(request)
    return respond(known(engine.billing_config(id), f"customer `{id}`"))
