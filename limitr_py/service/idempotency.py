"""`Idempotency-Key` on every state-changing request: a retry gets the first answer and status.

The metering endpoints hand the key to the engine, which records each call's answer in the commit that meters
it. For every other `POST`, `PUT`, `PATCH` and `DELETE` under `/v1`, this middleware records the answer
(status, content type, body) under a hash of (the caller's `Authorization`, the key), for a day, and answers a
retry from it; the same key with another method, path, query or body is 422 `idempotency_conflict`. The
endpoints whose repetition would change something (grants, top-ups, caps added or reset or removed) also hand
the key to the engine, so a retry after a crash between their commit and the recorded answer repeats nothing; the
others are settled by their ids (creating a customer again updates it, an entity or alt id that exists is not
made twice) or are PUTs.

Answers recorded: everything below 500 but 401 and 403 (a key may be fixed) and a 409 `conflict` (the engine
gave up after its retries: a retry may succeed). 5xx answers are never recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limitr_py.errors import LimitrError, StoreError
from limitr_py.limitr import Limitr
from limitr_py.service import problems

log = logging.getLogger("limitr.service")
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
METERING = frozenset({"/v1/allow", "/v1/track", "/v1/reserve", "/v1/settle", "/v1/release"})
"""Paths whose key the engine itself records (in the commit that meters)."""
KEY_MAX = 255


def _recordable(status: int, body: bytes) -> bool:
    if status >= 500 or status in (401, 403):
        return False
    if status == 409:
        try:
            return bool(json.loads(body).get("code") != "conflict")
        except (ValueError, AttributeError):
            return False
    return True


class IdempotentAnswers:
    def __init__(self, app: ASGIApp, engine: Callable[[], Limitr]) -> None:
        """`engine`: the engine in force (its store keeps the answers)."""
        self.app, self.engine = app, engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or ()) if scope["type"] == "http" else {}
        key = headers.get(b"idempotency-key")
        path: str = scope.get("path", "")
        if key is None or scope["method"] not in CHANGING or not path.startswith("/v1/") or path in METERING:
            await self.app(scope, receive, send)
            return
        text = key.decode("latin-1").strip()
        if not 0 < len(text) <= KEY_MAX or not text.isprintable():
            detail = f"`Idempotency-Key` must be 1–{KEY_MAX} printable characters"
            await problems.response(422, "invalid_argument", detail)(scope, receive, send)
            return
        try:
            body = await _read(receive)
        except problems.Problem as refused:  # too large (service/limits.py): refused here, as the app would
            await problems.response(refused.status, refused.code, refused.detail)(scope, receive, send)
            return
        caller = hashlib.sha256(headers.get(b"authorization", b"") + b"\0" + text.encode()).hexdigest()
        fingerprint = hashlib.sha256(
            b"\0".join([scope["method"].encode(), path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        engine = self.engine()
        try:
            found = await run_in_threadpool(engine.recorded_answer, caller)
        except StoreError as exc:  # fail closed: without the store, no answer
            await problems.response(503, "store_unavailable", str(exc).splitlines()[0], {"Retry-After": "1"})(
                scope, receive, send
            )
            return
        if found is not None:
            if found["fingerprint"] != fingerprint:
                detail = f"`Idempotency-Key` `{text[:80]}` was used with another request: a new request needs a new key"
                await problems.response(422, "idempotency_conflict", detail)(scope, receive, send)
                return
            await _answer(send, found)
            return
        answer: dict[str, Any] = {"fingerprint": fingerprint}
        held: list[Message] = []  # the answer, sent once recorded: a retry made after it arrived finds it
        sent_body = False

        async def replay() -> Message:
            nonlocal sent_body
            if sent_body:  # the body was read: what follows is the client's disconnect
                return await receive()
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            held.append(message)
            if message["type"] != "http.response.body" or message.get("more_body", False):
                return
            start, content = held[0], b"".join(m.get("body", b"") for m in held[1:])
            if _recordable(start["status"], content):
                answer["status"] = start["status"]
                answer["headers"] = [
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in start.get("headers", [])
                    if k.lower() in (b"content-type", b"location", b"retry-after")
                ]
                answer["body"] = content.decode("utf-8", "replace")
                try:
                    await run_in_threadpool(engine.record_answer, caller, answer)
                except LimitrError as exc:  # a retry then runs the request again, which the engine's keys make safe
                    log.warning("the answer to an Idempotency-Key was not recorded: %s", str(exc).splitlines()[0])
            for each in held:
                await send(each)

        await self.app(scope, replay, capture)


async def _read(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _answer(send: Send, found: dict[str, Any]) -> None:
    body = str(found.get("body", "")).encode("utf-8")
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in found.get("headers", [])]
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": int(found["status"]), "headers": headers})
    await send({"type": "http.response.body", "body": body})
