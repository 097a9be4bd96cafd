"""ASGI middleware that refuses a request body over `wire.MAX_BODY` before the application reads it whole."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limitr_py.service import problems, wire


class BodyLimit:
    """A declared `Content-Length` over the limit is answered at once; a body that grows past it while read
    stops the read with a 413 problem (raised inside the application, which answers it)."""

    def __init__(self, app: ASGIApp, limit: int = wire.MAX_BODY) -> None:
        self.app, self.limit = app, limit

    def _problem(self) -> problems.Problem:
        return problems.Problem(413, "body_too_large", f"request bodies are at most {self.limit // 1024} KiB")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            refusal = self._problem()
            await problems.response(refusal.status, refusal.code, refusal.detail)(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self._problem()
            return message

        await self.app(scope, limited_receive, send)
