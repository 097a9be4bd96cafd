"""Errors as RFC 9457 problem documents: `type`, `title`, `status`, `detail`, and our `code`.

| raised | status | code |
|---|---|---|
| InvalidArgumentError, a body that fails validation | 422 | invalid_argument |
| an `Idempotency-Key` reused with another body | 422 | idempotency_conflict |
| unknown customer or entitlement on a read | 404 | not_found |
| PolicyError | 400 | policy_error |
| ConcurrentUpdateError | 409 | conflict |
| StoreError | 503 | store_unavailable (fail closed: never an allowed answer without the store) |
| a body over 64 KiB / not JSON | 413 / 400 | body_too_large / malformed_json |
| no key / a key of too small a scope | 401 / 403 | unauthorized / forbidden |
| anything else | 500 | internal (one line, never a traceback) |
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from limitr_py.errors import (
    ConcurrentUpdateError,
    IdempotencyConflictError,
    InvalidArgumentError,
    PolicyError,
    StoreError,
)
from limitr_py.service import wire

log = logging.getLogger("limitr.service")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """Raised by an endpoint to answer with a problem document."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers, self.extra = status, code, detail, headers, extra


def response(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {
        "type": f"urn:limitr:problem:{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Response(wire.dumps(body), status, headers, media_type="application/problem+json")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Map every exception an endpoint can raise to its problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return response(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                return response(400, "malformed_json", str((e.get("ctx") or {}).get("error", "the body is not JSON")))
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        detail = f"`{first['field']}`: {first['message']}"
        return response(422, "invalid_argument", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(InvalidArgumentError)
    async def _argument(request: Request, exc: InvalidArgumentError) -> Response:
        return response(422, "invalid_argument", str(exc))

    @app.exception_handler(PolicyError)
    async def _policy(request: Request, exc: PolicyError) -> Response:
        diagnostics = [d.headline() for d in exc.diagnostics]
        return response(400, "policy_error", diagnostics[0] if diagnostics else str(exc), diagnostics=diagnostics)

    @app.exception_handler(IdempotencyConflictError)
    async def _reused(request: Request, exc: IdempotencyConflictError) -> Response:
        return response(422, "idempotency_conflict", f"{exc}: a new call needs a new key")

    @app.exception_handler(ConcurrentUpdateError)
    async def _conflict(request: Request, exc: ConcurrentUpdateError) -> Response:
        request.app.state.service.metrics.conflicts.inc()
        return response(409, "conflict", str(exc))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> Response:
        request.app.state.service.metrics.store_errors.inc()
        return response(503, "store_unavailable", str(exc).splitlines()[0], {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return response(500, "internal", f"internal error ({type(exc).__name__}); the server log has the details")
