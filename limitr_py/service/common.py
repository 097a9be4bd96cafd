"""What every route uses: the engine of the request, key scopes, exact answers, 404s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request
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


async def current_engine(request: Request) -> Limitr:  # async: no thread-pool hop for a dict lookup
    """The engine of the policy in force when the request arrived (a reload does not change it mid-request)."""
    return service_of(request).engine


Engine = Annotated[Limitr, Depends(current_engine)]


def respond(value: Any, status: int = 200) -> Response:
    return Response(wire.dumps(value), status, media_type="application/json")


def _authorized(needed: str) -> Callable[[Request], Awaitable[Limitr]]:
    """A dependency: the engine, once the request's `Authorization: Bearer KEY` names a key of at least `needed`
    scope. One dependency that reads the header itself: FastAPI's solving costs more per dependency and per
    declared parameter than the check does (async: a hash and a compare need no thread of the pool)."""

    async def engine(request: Request) -> Limitr:
        service = service_of(request)
        if service.keys is not None:
            _check_key(service.keys, request.headers.get("authorization"), needed)
        return service.engine

    return engine


def _check_key(keys: list[api_keys.ApiKey], authorization: str | None, needed: str) -> None:
    challenge = {"WWW-Authenticate": 'Bearer realm="limitr"'}
    if authorization is None or not authorization.startswith("Bearer "):
        raise Problem(401, "unauthorized", "send `Authorization: Bearer KEY`", headers=challenge)
    found = api_keys.find(keys, authorization[len("Bearer ") :].strip())
    if found is None:
        raise Problem(401, "unauthorized", "the key is not valid", headers=challenge)
    if not api_keys.allows(found, needed):
        raise Problem(403, "forbidden", f"the key `{found.name}` has scope `{found.scope}`; this needs `{needed}`")


# The engine, for a route that needs a key of scope read, write or admin.
ReadEngine = Annotated[Limitr, Depends(_authorized("read"))]
WriteEngine = Annotated[Limitr, Depends(_authorized("write"))]
AdminEngine = Annotated[Limitr, Depends(_authorized("admin"))]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="a retry with the same key meters nothing and answers what the first call answered",
    ),
]


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
