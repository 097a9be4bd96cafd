"""Request bodies (pydantic models) and the route class that reads them exactly.

Field names are the Python API's argument names. Numbers are ints, exact decimals (a JSON number with a point is
read as Decimal, never float) or strings with a unit (`"250MB"`); booleans are not numbers. Unknown fields are
refused with their name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, StrictStr, WithJsonSchema

from limitr_py.service import wire


def _number(value: Any) -> int | Decimal | str:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError("must be a number: an integer, a decimal, or text such as `250MB`")
    return value


Number = Annotated[
    int | Decimal | str,
    PlainValidator(_number),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}],
            "description": "an integer, an exact decimal, or text with a unit such as `250MB`",
        }
    ),
]
"""A quantity: an int, an exact decimal, or text such as `"250MB"` (the engine checks units and range)."""
Event = StrictBool | dict[str, Any]
"""`true`/`false`, or an object: events on, and it becomes their `event_data` and the overhead context."""
Cap = dict[str, Number] | None
"""A call-scoped cap (`{"value": 5, "credit": "rune"}`), as the Python API's `cap=` takes it."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AllowBody(Body):
    customer: StrictStr = Field(description="customer id (or alt id)")
    entitlement: StrictStr
    value: Number = Field(0, description="units; negative gives units back")
    event: Event = True
    cap: Cap = None
    overhead: Number | None = Field(None, description="provider cost of this call, in runes")


class CheckBody(Body):
    customer: StrictStr
    entitlement: StrictStr
    value: Number = 0
    cap: Cap = None
    context: dict[str, Any] | None = None
    overhead: Number | None = None


class TrackBody(Body):
    customer: StrictStr
    entitlement: StrictStr
    value: Number
    event: Event = True
    overhead: Number | None = None


class CustomerBody(Body):
    id: StrictStr
    plan: StrictStr = Field("", description="'' = the plan of its first ref that has one, else the default plan")
    type: StrictStr = "user"
    label: StrictStr = "User"
    refs: list[StrictStr] = []
    alt_ids: list[StrictStr] = []
    metadata: dict[str, Any] | None = None


class ExactRequest(Request):
    """A request whose JSON body is read with exact numbers (see wire.py)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = wire.loads(body)
            except wire.NotJSON as exc:  # FastAPI turns it into a `json_invalid` validation error: our 400
                raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), exc.position) from None
        return self._json


class ExactRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            return await handler(ExactRequest(request.scope, request.receive))

        return exact_handler
