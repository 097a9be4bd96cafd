"""The bench's bare endpoint: the same framework and server as `limitr serve`, doing nothing with the request.

    uvicorn bench.bare_service:app

FastAPI on uvicorn, one sync endpoint that reads a pydantic body of the same shape as /v1/allow's and answers a
constant: what the service costs before the engine does anything.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

app = FastAPI()


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str
    entitlement: str
    value: int = 0


@app.post("/v1/allow")
def allow(body: Body) -> Response:
    return Response(b'{"allowed":true}', media_type="application/json")


@app.post("/v1/customers")
def create_customer() -> Response:  # each client makes its customer first, untimed
    return Response(b"{}", status_code=201, media_type="application/json")
