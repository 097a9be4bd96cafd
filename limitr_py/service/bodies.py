"""Request bodies (pydantic models) and the route class that reads them exactly.

Field names are the Python API's argument names. Numbers are ints, exact decimals (a JSON number with a point is
read as Decimal, never float) or strings with a unit (`"250MB"`); booleans are not numbers. Unknown fields are
refused with their name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, StrictInt, StrictStr, WithJsonSchema

from limitr_py import iso_time
from limitr_py.service import wire
from limitr_py.service.common import check_key


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


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time, e.g. `2026-12-31T00:00:00Z`")
    return iso_time.parse(value)  # NotATime is a ValueError: pydantic reports its message with the field


Time = Annotated[datetime, PlainValidator(_time), WithJsonSchema({"type": "string", "format": "date-time"})]
"""An ISO 8601 time with a zone (`expires_on`, `expires`)."""
Duration = StrictStr | StrictInt
"""A duration: text such as `30days`, `10min`, or milliseconds."""


class ReserveBody(Body):
    customer: StrictStr
    entitlement: StrictStr
    value: Number | None = Field(None, description="units to hold; omitted: estimated from `basis`")
    context: dict[str, Any] | None = None
    basis: Number | None = None
    segment: StrictStr | None = None
    ttl: Duration | None = None
    quantile: Number = "0.9"
    overhead: Number | None = None


class SettleBody(Body):
    customer: StrictStr
    entitlement: StrictStr
    hold_id: StrictStr
    value: Number = 0
    event: Event = True
    overhead: Number | None = None
    basis: Number | None = None
    segment: StrictStr | None = None


class ReleaseBody(Body):
    customer: StrictStr
    entitlement: StrictStr
    hold_id: StrictStr


class CustomerUpdate(Body):
    """Only the fields given change."""

    plan: StrictStr | None = None
    overwrite_meters: StrictBool = False
    refs: list[StrictStr] | None = None
    type: StrictStr | None = None
    label: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class AltIdBody(Body):
    alt: StrictStr


class OverrideBody(Body):
    expires: Time | None = None
    credit: StrictStr | None = None
    mode: StrictStr | None = None
    value: Number | None = None
    increment: Number | None = None
    resets: StrictBool | None = None
    reset_inc: Duration | None = None
    reset_sch: StrictStr | None = None


class EntityBody(Body):
    entity_id: StrictStr
    feature: StrictStr | None = Field(None, description="a seat entitlement: the entity takes one unit of it")
    type: StrictStr = "entity"
    label: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class CapBody(Body):
    value: Number
    cap_id: StrictStr | None = None
    credit: StrictStr = "rune"
    exchangeable: StrictBool | None = None
    ignore_grants: StrictBool = False
    overage_only: StrictBool = False
    observe_only: StrictBool = False
    overhead_cost: StrictBool = False
    follow_decrements: StrictBool = False
    scope: list[StrictStr] | None = None
    resets: StrictBool = False
    reset_inc: Duration | None = None
    reset_sch: StrictStr | None = None
    expires_on: Time | None = None
    events: StrictBool = True
    hard_trailing: StrictBool = False
    shared: StrictBool = False
    shared_with: list[StrictStr] | None = None


class GrantBody(Body):
    credit: StrictStr
    value: Number
    expires_on: Time | None = None
    grant_id: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class TopupBody(Body):
    topup: StrictStr


class FeatureConfigBody(Body):
    """Owostack's per-customer exception for one feature; a field left out is left as it is, `null` clears it."""

    overage: StrictStr | None = Field(None, description="`block`, or `charge` (bill overage)")
    max_overage_units: Number | None = None


class OverageLimitBody(Body):
    """Owostack's customer-wide cap on billable overage, in minor units of the policy's currency."""

    max_overage_amount: Number | None
    on_limit_reached: StrictStr = "block"


class BillingControlsBody(Body):
    """Autumn's `update_billing_controls`: each list given replaces the customer's (or the entity's)."""

    entity_id: StrictStr | None = None
    overage_allowed: list[dict[str, Any]] | None = None
    spend_limits: list[dict[str, Any]] | None = None
    usage_limits: list[dict[str, Any]] | None = None
    usage_alerts: list[dict[str, Any]] | None = None
    auto_topups: list[dict[str, Any]] | None = None


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
    """Every route of the service: a route marked with `common.needs(scope)` checks the caller's key first (a
    plain check, where a FastAPI dependency cost a tenth of a metered request to solve); then the body is read
    with exact numbers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needed: str | None = getattr(self.endpoint, "needed_scope", None)

        async def exact_handler(request: Request) -> Response:
            if needed is not None:
                check_key(request, needed)
            return await handler(ExactRequest(request.scope, request.receive))

        return exact_handler
