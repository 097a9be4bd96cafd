"""Benchmark: allowed calls per second over HTTP (`limitr serve`), beside a bare endpoint of the same framework
and server measured in the same run.

    python bench/bench_service.py [--seconds 3] [--stores memory,redis] [--history on|off|both]

Clients are separate processes, each with one keep-alive connection, calling POST /v1/allow in a loop for a
customer of its own under a limit it never reaches (1 and 16 at a time). The bare endpoint (bench/bare_service.py)
parses a body of the same shape and answers a constant. Every server runs one uvicorn worker. Not a test:
nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from bench_stores import _loop, measure  # type: ignore[import-not-found]  # the same load and latencies

from tests.backends import REDIS_URL
from tests.engine_helpers import empty
from tests.service_helpers import Server

POLICY = {
    "policy": {
        "credits": {"call": {}},
        "plans": {"p": {"default": True, "entitlements": {"api": {"limit": {"credit": "call", "value": 10**12}}}}},
    }
}


def _client(url: str, seconds: float, out: Any) -> None:
    """One client process: a customer of its own (created untimed), then allow calls in a loop."""
    customer = f"c{uuid.uuid4().hex[:8]}"
    body = {"customer": customer, "entitlement": "api", "value": 1}
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/v1/customers", json={"id": customer}).status_code == 201
        http.post("/v1/allow", json=body)  # connection made, customer's meter warm

        def call() -> None:
            reply = http.post("/v1/allow", json=body)
            assert reply.status_code == 200 and reply.json()["allowed"], reply.text

        out.put(_loop(call, seconds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--stores", default="memory,redis")
    parser.add_argument("--history", default="on", help="on, off, or both (each customer's recent events kept)")
    options = parser.parse_args()
    bare_command = [sys.executable, "-m", "uvicorn", "bench.bare_service:app", "--port", "0", "--log-level", "info"]
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.json"
        policy.write_text(json.dumps(POLICY))
        print(f"{'server':30} {'clients':>7} {'calls/s':>9} {'median µs':>10} {'p99 µs':>9} {'bare/s':>9} {'ratio':>6}")
        bare: dict[int, float] = {}
        with Server(policy, "", command=bare_command) as server:
            for clients in (1, 16):
                bare[clients], median, p99 = measure(_client, server.url, clients, options.seconds)
                print(f"{'bare endpoint':30} {clients:7} {bare[clients]:9,.0f} {median:10,.0f} {p99:9,.0f}")
        variants = {"on": [True], "off": [False], "both": [True, False]}[options.history]
        for name in options.stores.split(","):
            for history in variants:
                url = {"memory": "memory://", "redis": f"{REDIS_URL}?prefix=bench{uuid.uuid4().hex[:6]}"}[name]
                with Server(policy, url, *([] if history else ["--no-event-history"])) as server:
                    for clients in (1, 16):
                        rate, median, p99 = measure(_client, server.url, clients, options.seconds)
                        label = f"limitr serve ({name}{'' if history else ', no history'})"
                        print(
                            f"{label:30} {clients:7} {rate:9,.0f} {median:10,.0f} {p99:9,.0f} "
                            f"{bare[clients]:9,.0f} {rate / bare[clients]:6.2f}"
                        )
                if name != "memory":
                    empty(url)


if __name__ == "__main__":
    main()
