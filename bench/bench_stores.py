"""Benchmark: allow() on each durable store with 1, 4 and 16 concurrent worker processes, beside the store's
bare minimum measured in the same run; the cost of a plan of 20 entitlements against one; round trips per allow
(store reads + commits: on PostgreSQL each is one statement).

    python bench/bench_stores.py [--seconds 3] [--stores sqlite,redis,postgres,redis-cluster]

Baselines: SQLite and PostgreSQL — one single-row UPDATE transaction; Redis — one EVALSHA of a no-op script.
Each worker meters its own customer (throughput, not contention). Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from limitr_py import Limitr
from tests.backends import BACKENDS, CLUSTER_PORTS, POSTGRES_URL, REDIS_URL, RedisCluster, reachable
from tests.engine_helpers import empty

DOC: dict[str, Any] = {
    "policy": {
        "credits": {"tok": {"price": {"amount": 0.001}}},
        "plans": {
            "p": {
                "default": True,
                "entitlements": {"chat": {"limit": {"credit": "tok", "value": 10**12, "mode": "soft"}}},
            }
        },
    }
}


WIDE: dict[str, Any] = {
    "policy": {
        "credits": {"tok": {"price": {"amount": 0.001}}},
        "plans": {
            "p": {
                "default": True,
                "entitlements": {
                    "chat" if i == 0 else f"feature_{i}": {"limit": {"credit": "tok", "value": 10**12, "mode": "soft"}}
                    for i in range(20)
                },
            }
        },
    }
}
"""The same plan with 20 entitlements: every one of the customer's 20 meters is used before timing starts."""


def _engine_worker(url: str, seconds: float, out: Any, doc: dict[str, Any] = DOC) -> None:
    engine = Limitr.new(doc, store=url)
    me = f"c{uuid.uuid4().hex[:8]}"
    engine.create_customer(me)
    for entitlement in doc["policy"]["plans"]["p"]["entitlements"]:
        engine.allow(me, entitlement, 1)
    out.put(_loop(lambda: engine.allow(me, "chat", 1, event=False), seconds))
    engine.close()


def _wide_worker(url: str, seconds: float, out: Any) -> None:
    _engine_worker(url, seconds, out, WIDE)


def _baseline_worker(url: str, seconds: float, out: Any) -> None:
    me = f"c{uuid.uuid4().hex[:8]}"
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :], timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS bench (k TEXT PRIMARY KEY, v INTEGER)")
        conn.execute("INSERT OR IGNORE INTO bench VALUES (?, 0)", (me,))

        def op() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE bench SET v = v + 1 WHERE k = ?", (me,))
            conn.execute("COMMIT")
    elif url.startswith("postgresql"):
        import psycopg

        pg = psycopg.connect(POSTGRES_URL, autocommit=True)
        pg.execute("CREATE TABLE IF NOT EXISTS bench (k TEXT PRIMARY KEY, v BIGINT)")
        pg.execute("INSERT INTO bench VALUES (%s, 0) ON CONFLICT DO NOTHING", (me,))

        def op() -> None:
            with pg.transaction():
                pg.execute("UPDATE bench SET v = v + 1 WHERE k = %s", (me,))
    else:
        import redis
        import redis.cluster

        client: Any = (
            redis.cluster.RedisCluster(host="127.0.0.1", port=CLUSTER_PORTS[0])
            if url.startswith("redis+cluster")
            else redis.Redis.from_url(REDIS_URL)
        )
        sha = client.script_load("return 1")

        def op() -> None:
            client.evalsha(sha, 1, f"bench:{{{me}}}")

    out.put(_loop(op, seconds))


def _loop(op: Any, seconds: float) -> list[float]:
    latencies = []
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        op()
        latencies.append(time.perf_counter() - now)
    return latencies


def measure(target: Any, url: str, workers: int, seconds: float) -> tuple[float, float, float]:
    """(ops per second in total, median µs, p99 µs)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, seconds, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    samples = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    flat = sorted(x for s in samples for x in s)
    return len(flat) / seconds, statistics.median(flat) * 1e6, flat[int(len(flat) * 0.99)] * 1e6


def round_trips(url: str, calls: int = 2000) -> float:
    """Network round trips per allow() in the steady state: store reads + commits, counted in-process."""
    engine = Limitr.new(DOC, store=url)
    inner: Any = engine.store.inner  # type: ignore[attr-defined]
    counts = {"read": 0, "commit": 0}
    for name in counts:
        original = getattr(inner, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _original(*args, **kwargs)

        setattr(inner, name, counted)
    engine.create_customer("rt")
    engine.allow("rt", "chat", 1)
    counts.update(read=0, commit=0)
    for _ in range(calls):
        engine.allow("rt", "chat", 1, event=False)
    engine.close()
    return (counts["read"] + counts["commit"]) / calls


ONE_MASTER = 7201


def cluster_scaling(seconds: float) -> None:
    """Throughput with 1 vs 3 masters, 16 workers each metering its own customer (its own group)."""
    one = RedisCluster(ports=(ONE_MASTER,))
    one.start()
    try:
        single, _, _ = measure(_engine_worker, f"redis+cluster://127.0.0.1:{ONE_MASTER}?prefix=b1", 16, seconds)
    finally:
        one.stop()
    triple, _, _ = measure(_engine_worker, f"redis+cluster://127.0.0.1:{CLUSTER_PORTS[0]}?prefix=b3", 16, seconds)
    print(f"redis-cluster  16 workers: 1 master {single:,.0f}/s, 3 masters {triple:,.0f}/s ({triple / single:.2f}×)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--stores", default="sqlite,redis,postgres,redis-cluster")
    options = parser.parse_args()
    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'store':14} {'workers':>7} {'allows/s':>10} {'median µs':>10} {'p99 µs':>9} "
            f"{'baseline/s':>11} {'ratio':>6}"
        )
        for name in options.stores.split(","):
            if name == "redis-cluster" and not all(reachable("127.0.0.1", p) for p in CLUSTER_PORTS):
                cluster = RedisCluster()
                cluster.start()
            url = BACKENDS[name](Path(tmp))
            for workers in (1, 4, 16):
                rate, median, p99 = measure(_engine_worker, url, workers, options.seconds)
                base, _, _ = measure(_baseline_worker, url, workers, options.seconds)
                print(
                    f"{name:14} {workers:7} {rate:10,.0f} {median:10,.0f} {p99:9,.0f} {base:11,.0f} {rate / base:6.2f}"
                )
            wide, _, _ = measure(_wide_worker, url, 1, options.seconds)
            narrow, _, _ = measure(_engine_worker, url, 1, options.seconds)
            print(f"{name:14} 20 entitlements: {wide:,.0f}/s vs 1: {narrow:,.0f}/s ({narrow / wide:.2f}× the cost)")
            if name != "sqlite":
                print(f"{name:14} round trips per allow (steady state): {round_trips(url):.3f}")
            if name == "redis-cluster":
                cluster_scaling(options.seconds)
            empty(url)  # the benchmark's namespace goes, like the tests' (a SQLite file goes with `tmp`)
    if cluster is not None:
        cluster.stop()


if __name__ == "__main__":
    main()
