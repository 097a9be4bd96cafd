"""Benchmark: allowed calls per second over HTTP (`limitr serve`), beside a bare endpoint of the same framework
and server measured in the same run.

    python bench/bench_service.py [--seconds 3] [--rounds 3] [--stores memory,redis] [--history on|off|both]

Clients are separate processes, each with one keep-alive connection, calling POST /v1/allow in a loop for a
customer of its own under a limit it never reaches (1 and 16 at a time). Each round measures every server in
turn; the table shows the median of the rounds, each ratio taken against the bare endpoint of its own round, and
the range of those ratios; and the server process's CPU time per request (from /proc) with its ratio to the bare
endpoint's, a figure that moves far less than throughput when the machine's speed does. The bare endpoint
(bench/bare_service.py) parses a body of the same shape and answers a constant. Every server runs one uvicorn
worker. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from contextlib import ExitStack
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc/PID/stat: every thread's, those that ended included; the
    thread pool's idle workers do end between rounds)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(server: Server, clients: int, seconds: float) -> tuple[float, float, float, float]:
    """`measure`, and the server's CPU time per request it answered (each client's 2 untimed ones included):
    a figure that moves far less than throughput when the machine's speed does."""
    before = _cpu_seconds(server.proc.pid)
    rate, median, p99 = measure(_client, server.url, clients, seconds)
    used = _cpu_seconds(server.proc.pid) - before
    return rate, median, p99, used / (rate * seconds + 2 * clients) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--stores", default="memory,redis")
    parser.add_argument("--history", default="on", help="on, off, or both (each customer's recent events kept)")
    options = parser.parse_args()
    bare_command = [sys.executable, "-m", "uvicorn", "bench.bare_service:app", "--port", "0", "--log-level", "info"]
    histories = {"on": [True], "off": [False], "both": [True, False]}[options.history]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        policy = Path(tmp) / "policy.json"
        policy.write_text(json.dumps(POLICY))
        # Every server runs for the whole benchmark, and each round measures all of them one after the other: a
        # slow spell of the machine lands on one round of every server, not on every round of one.
        servers = {"bare endpoint": running.enter_context(Server(policy, "", command=bare_command))}
        urls = []
        for name in options.stores.split(","):
            for history in histories:
                url = {"memory": "memory://", "redis": f"{REDIS_URL}?prefix=bench{uuid.uuid4().hex[:6]}"}[name]
                label = f"limitr serve ({name}{'' if history else ', no history'})"
                servers[label] = running.enter_context(
                    Server(policy, url, *([] if history else ["--no-event-history"]))
                )
                urls.append(url)
        runs: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
        for _ in range(options.rounds):
            for clients in (1, 16):
                for label, server in servers.items():
                    runs.setdefault((label, clients), []).append(_measured(server, clients, options.seconds))
        print(f"median of {options.rounds} interleaved rounds of {options.seconds:g} s")
        print(
            f"{'server':30} {'clients':>7} {'calls/s':>9} {'median µs':>10} {'p99 µs':>9} {'CPU µs':>7} "
            f"{'ratio':>6} {'range':>11} {'CPU ratio':>9}"
        )
        for clients in (1, 16):
            bare = runs["bare endpoint", clients]
            bare_cpu = statistics.median(b[3] for b in bare)
            for label in servers:
                got = runs[label, clients]
                rate, median, p99, cpu = (statistics.median(x[i] for x in got) for i in range(4))
                ratios = [r[0] / b[0] for r, b in zip(got, bare, strict=True)]  # each beside its own round's bare
                shown = (
                    ""
                    if label == "bare endpoint"
                    else f"{statistics.median(ratios):6.2f} {min(ratios):5.2f}–{max(ratios):.2f} {bare_cpu / cpu:9.2f}"
                )
                print(f"{label:30} {clients:7} {rate:9,.0f} {median:10,.0f} {p99:9,.0f} {cpu:7,.0f} {shown}")
    for url in urls:
        if not url.startswith("memory"):
            empty(url)


if __name__ == "__main__":
    main()
