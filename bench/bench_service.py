"""Benchmark: allowed calls per second over HTTP (`limitr serve`), beside a bare endpoint of the same framework
and server measured in the same run.

    python bench/bench_service.py [--seconds 3] [--stores memory,redis]

Clients are separate processes, each with one keep-alive connection, calling POST /v1/allow in a loop for a
customer of its own under a limit it never reaches (1 and 16 at a time). The bare endpoint (bench/bare_service.py)
parses a body of the same shape and answers a constant. Every server runs one uvicorn worker. Not a test:
nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.backends import REDIS_URL
from tests.engine_helpers import empty
from tests.service_helpers import Server

POLICY = {
    "policy": {
        "credits": {"call": {}},
        "plans": {"p": {"default": True, "entitlements": {"api": {"limit": {"credit": "call", "value": 10**12}}}}},
    }
}


def _client(url: str, seconds: float, customer: str, out: Any) -> None:
    body = {"customer": customer, "entitlement": "api", "value": 1}
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/v1/allow", json=body)  # connection made, customer's meter warm
        end = time.perf_counter() + seconds
        while (now := time.perf_counter()) < end:
            reply = http.post("/v1/allow", json=body)
            latencies.append(time.perf_counter() - now)
            assert reply.status_code == 200 and reply.json()["allowed"], reply.text
    out.put(latencies)


def load(url: str, clients: int, seconds: float, customers: list[str]) -> tuple[float, float, float]:
    """(calls per second in total, median µs, p99 µs)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, seconds, customers[i], out)) for i in range(clients)]
    for p in procs:
        p.start()
    samples = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    flat = sorted(x for s in samples for x in s)
    return len(flat) / seconds, statistics.median(flat) * 1e6, flat[int(len(flat) * 0.99)] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--stores", default="memory,redis")
    options = parser.parse_args()
    bare_command = [sys.executable, "-m", "uvicorn", "bench.bare_service:app", "--port", "0", "--log-level", "info"]
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.json"
        policy.write_text(json.dumps(POLICY))
        print(f"{'server':22} {'clients':>7} {'calls/s':>9} {'median µs':>10} {'p99 µs':>9} {'bare/s':>9} {'ratio':>6}")
        customers = [f"c{uuid.uuid4().hex[:8]}" for _ in range(16)]
        bare: dict[int, float] = {}
        with Server(policy, "", command=bare_command) as server:
            for clients in (1, 16):
                bare[clients], median, p99 = load(server.url, clients, options.seconds, customers)
                print(f"{'bare endpoint':22} {clients:7} {bare[clients]:9,.0f} {median:10,.0f} {p99:9,.0f}")
        for name in options.stores.split(","):
            url = {"memory": "memory://", "redis": f"{REDIS_URL}?prefix=bench{uuid.uuid4().hex[:6]}"}[name]
            with Server(policy, url) as server:
                for c in customers:
                    server.client.post("/v1/customers", json={"id": c})
                for clients in (1, 16):
                    rate, median, p99 = load(server.url, clients, options.seconds, customers)
                    label = f"limitr serve ({name})"
                    print(
                        f"{label:22} {clients:7} {rate:9,.0f} {median:10,.0f} {p99:9,.0f} "
                        f"{bare[clients]:9,.0f} {rate / bare[clients]:6.2f}"
                    )
            if name != "memory":
                empty(url)


if __name__ == "__main__":
    main()
