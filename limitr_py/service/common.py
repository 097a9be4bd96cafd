"""What every route uses: the engine of the request, key scopes, exact answers, 404s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from fastapi.responses import Response

from limitr_py import iso_time
from limitr_py.limitr import Limitr
from limitr_py.service import keys as api_keys
from limitr_py.service import wire
from limitr_py.service.problems import Problem

if TYPE_CHECKING:
    from limitr_py.service.app import Service


def service_of(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


def engine_of(request: Request) -> Limitr:
    """The engine of the policy in force: read once at the start of a route, so a reload does not change it
    mid-request."""
    return service_of(request).engine


def respond(value: Any, status: int = 200) -> Response:
    return Response(wire.dumps(value), status, media_type="application/json")


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def needs(scope: str) -> Callable[[Endpoint], Endpoint]:
    """A route needs a key of at least `scope` (read, write or admin): ExactRoute checks it before the request
    is read, so a caller without one learns nothing about the body the route takes. Below `@router.…`."""
    if scope not in api_keys.SCOPES:
        raise ValueError(f"unknown scope `{scope}`")

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.needed_scope = scope  # type: ignore[attr-defined]
        return endpoint

    return mark


def check_key(request: Request, needed: str) -> None:
    """The request's `Authorization: Bearer KEY` names a key of at least `needed` scope (nothing to check when
    the service has no keys), else the 401 or 403 problem."""
    keys = service_of(request).keys
    if keys is None:
        return
    authorization = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": 'Bearer realm="limitr"'}
    if authorization is None or not authorization.startswith("Bearer "):
        raise Problem(401, "unauthorized", "send `Authorization: Bearer KEY`", headers=challenge)
    found = api_keys.find(keys, authorization[len("Bearer ") :].strip())
    if found is None:
        raise Problem(401, "unauthorized", "the key is not valid", headers=challenge)
    if not api_keys.allows(found, needed):
        raise Problem(403, "forbidden", f"the key `{found.name}` has scope `{found.scope}`; this needs `{needed}`")


_IDEMPOTENCY_HELP = "a retry with the same key meters nothing and answers what the first call answered"
IDEMPOTENT: dict[str, Any] = {
    "parameters": [
        {
            "description": _IDEMPOTENCY_HELP,
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": _IDEMPOTENCY_HELP,
                "title": "Idempotency-Key",
            },
        }
    ]
}
"""`openapi_extra` of a route that hands the `Idempotency-Key` header to the engine (`idempotency_key`)."""


def idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key` header, read directly: as a declared Header parameter FastAPI validated
    it on every call at a cost of about a tenth of a metered request (the engine checks the key itself)."""
    return request.headers.get("idempotency-key")


def known(value: Any, what: str) -> Any:
    """`value`, or a 404 naming what was not found (the Python API's None)."""
    if value is None:
        raise Problem(404, "not_found", f"no {what}")
    return value


def done(ok: bool, status: int, code: str, detail: str) -> None:
    """A False from the Python API as the problem it means."""
    if not ok:
        raise Problem(status, code, detail)


def decision_answer(decision: Any) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "gate": decision.gate,
        "limit_type": decision.limit_type,
        "headroom": decision.headroom,
    }


def parse_time(text: str, field: str) -> datetime:
    try:
        return iso_time.parse(text)
    except iso_time.NotATime as exc:
        raise Problem(422, "invalid_argument", f"`{field}` {exc}: `{text}`") from None
