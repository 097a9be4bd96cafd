"""`limitr serve`: the engine as an HTTP service (FastAPI on Starlette, served by uvicorn).

`create_app(policy_path, store=…)` builds the ASGI application, for users who mount it in their own server; the
`limitr serve` command runs it. Everything it answers is what the Python API answers: each endpoint checks its
request, calls one engine method and writes its result as exact JSON.
"""

from limitr_py.service.app import create_app

__all__ = ["create_app"]
