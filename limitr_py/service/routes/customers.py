"""Customers: create, read, update, delete; alt ids, overrides, entities; the reads of one meter; invoices."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from limitr_py.service.bodies import AltIdBody, CustomerBody, CustomerUpdate, EntityBody, ExactRoute, OverrideBody
from limitr_py.service.common import done, engine_of, known, needs, parse_time, respond
from limitr_py.service.problems import Problem

router = APIRouter(prefix="/v1", route_class=ExactRoute, tags=["customers"])


@router.post("/customers", status_code=201)
@needs("admin")
def create_customer(body: CustomerBody, request: Request) -> Response:
    """Create a customer (an existing id is updated, its meters kept). 422 when no plan resolves."""
    engine = engine_of(request)
    customer = engine.create_customer(body.id, body.plan, body.type, body.label, body.refs, body.alt_ids, body.metadata)
    if customer is None:
        raise Problem(422, "invalid_argument", f"no plan resolves for `{body.id}`: name a plan, or a ref that has one")
    return respond(customer, 201)


@router.get("/customers/{id}")
@needs("read")
def get_customer(id: str, request: Request) -> Response:
    engine = engine_of(request)
    return respond(known(engine.customer(id), f"customer `{id}`"))


@router.patch("/customers/{id}")
@needs("admin")
def update_customer(id: str, body: CustomerUpdate, request: Request) -> Response:
    """Change a customer's plan (`set_customer_plan`, usage kept unless `overwrite_meters`), refs
    (`set_customer_refs`), type, label or metadata; only the fields given change."""
    engine = engine_of(request)
    current = known(engine.customer(id), f"customer `{id}`")
    if body.plan is not None:
        done(
            engine.set_customer_plan(id, body.plan, body.overwrite_meters),
            422,
            "invalid_argument",
            f"`{body.plan}` is not a plan of the policy",
        )
    if body.refs is not None:
        done(engine.set_customer_refs(id, body.refs), 422, "invalid_argument", "the refs cannot be set")
    if body.type is not None or body.label is not None or body.metadata is not None:
        engine.create_customer(
            current.id,
            body.plan if body.plan is not None else current.plan,
            body.type if body.type is not None else current.type,
            body.label if body.label is not None else current.label,
            body.refs if body.refs is not None else current.refs,
            current.alt_ids,
            body.metadata if body.metadata is not None else current.metadata,
        )
    return respond(engine.customer(id))


@router.delete("/customers/{id}", status_code=204)
@needs("admin")
def delete_customer(id: str, request: Request) -> Response:
    engine = engine_of(request)
    done(engine.delete_customer(id), 404, "not_found", f"no customer `{id}`")
    return Response(status_code=204)


@router.post("/customers/{id}/alt_ids", status_code=201)
@needs("admin")
def add_alt_id(id: str, body: AltIdBody, request: Request) -> Response:
    """Let `alt` name the customer too; 409 when it names another."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    done(engine.set_alt_customer_id(id, body.alt), 409, "taken", f"`{body.alt}` already names a customer")
    return respond(engine.customer(id), 201)


@router.delete("/alt_ids/{alt}", status_code=204)
@needs("admin")
def delete_alt_id(alt: str, request: Request) -> Response:
    engine = engine_of(request)
    done(engine.delete_alt_customer_id(alt), 404, "not_found", f"no alt id `{alt}`")
    return Response(status_code=204)


@router.put("/customers/{id}/overrides/{entitlement}")
@needs("admin")
def put_override(id: str, entitlement: str, body: OverrideBody, request: Request) -> Response:
    """The customer's own limit for an entitlement until `expires` (it replaces an earlier override)."""
    engine = engine_of(request)
    limit = engine.create_customer_override(
        id,
        entitlement,
        expires=body.expires,
        credit=body.credit,
        mode=body.mode,
        value=body.value,
        increment=body.increment,
        resets=body.resets,
        reset_inc=body.reset_inc,
        reset_sch=body.reset_sch,
    )
    return respond(known(limit, f"customer `{id}` with an entitlement `{entitlement}`"))


@router.delete("/customers/{id}/overrides/{entitlement}", status_code=204)
@needs("admin")
def delete_override(id: str, entitlement: str, request: Request) -> Response:
    engine = engine_of(request)
    done(engine.remove_customer_override(id, entitlement), 404, "not_found", f"no override of `{entitlement}`")
    return Response(status_code=204)


@router.post("/customers/{id}/entities", status_code=201)
@needs("admin")
def add_entity(id: str, body: EntityBody, request: Request) -> Response:
    """Create an entity of the customer. With `feature`, it takes one unit of that seat limit: a limit that is
    full denies with 409 and creates nothing."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    added = engine.add_entity(
        id, body.entity_id, feature=body.feature, type=body.type, label=body.label, metadata=body.metadata
    )
    if not added:
        why = f"the `{body.feature}` limit is full" if body.feature else "the id is taken or cannot be placed"
        raise Problem(409, "denied", f"entity `{body.entity_id}` was not created: {why}")
    return respond(engine.customer(body.entity_id), 201)


@router.delete("/customers/{id}/entities/{entity_id}", status_code=204)
@needs("admin")
def remove_entity(id: str, entity_id: str, request: Request, feature: str | None = None) -> Response:
    """Delete an entity; with `?feature=`, give its seat back."""
    engine = engine_of(request)
    done(engine.remove_entity(id, entity_id, feature=feature), 404, "not_found", f"no entity `{entity_id}` of `{id}`")
    return Response(status_code=204)


@router.get("/customers/{id}/entitlements/{entitlement}", tags=["reads"])
@needs("read")
def entitlement(id: str, entitlement: str, request: Request) -> Response:
    """The meter in one object: value, remaining, limit, allowance, units held, and when it resets (null for what
    does not apply: an observe limit has no remaining, a feature flag has no meter)."""
    engine = engine_of(request)
    known(engine.customer(id), f"customer `{id}`")
    decision = engine.explain(id, entitlement)
    if decision.gate == "entitlement":
        raise Problem(404, "not_found", f"`{entitlement}` is not an entitlement of `{id}`'s plan")
    return respond(
        {
            "customer": id,
            "entitlement": entitlement,
            "feature": decision.gate == "feature",
            "value": engine.value(id, entitlement),
            "remaining": engine.remaining(id, entitlement),
            "limit": engine.limit(id, entitlement),
            "allowance": engine.allowance(id, entitlement),
            "held": engine.held(id, entitlement),
            "resets": engine.resets(id, entitlement),
        }
    )


@router.get("/customers/{id}/invoice", tags=["reads"])
@needs("read")
def invoice(id: str, request: Request, period: str = "current") -> Response:
    """The invoice of the `current` or `previous` period, or of the period containing an ISO 8601 time; amounts
    (and `total`) in minor units of the currency."""
    engine = engine_of(request)
    at: str | datetime = period if period in ("current", "previous") else parse_time(period, "period")
    return respond(known(engine.invoice(id, period=at), f"customer `{id}`"))
