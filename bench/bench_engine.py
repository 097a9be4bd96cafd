"""Benchmark: `allow()` on the memory store against a dict-and-if baseline measured in the same run.

    python bench/bench_engine.py [--calls 50000]

Scenarios: a plain hard limit, and a soft monthly limit priced in tiers; each with events off and on (one
handler). Prints median latency, calls/s on one core and the ratio to the baseline, then the memory a customer
with 5 meters takes. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from limitr_py import Limitr, ManualClock

POLICY: dict[str, Any] = {
    "policy": {
        "credits": {
            "req": {},
            "tok": {
                "pricing_model": "tiered",
                "tiers": [{"up_to": 1000, "price": {"amount": 0.002}}, {"price": {"amount": 0.001}}],
            },
        },
        "plans": {
            "p": {
                "default": True,
                "entitlements": {
                    "hard": {"limit": {"credit": "req", "value": 10**12}},
                    "soft": {
                        "limit": {
                            "credit": "tok",
                            "value": 100,
                            "mode": "soft",
                            "resets": True,
                            "reset_sch": "monthly:1",
                        }
                    },
                    "e3": {"limit": {"credit": "req", "value": 10}},
                    "e4": {"limit": {"credit": "req", "value": 10}},
                    "e5": {"limit": {"credit": "req", "value": 10}},
                },
            }
        },
    }
}


def timed(fn: Any, calls: int) -> tuple[float, float]:
    """(median ns per call over batches of 100, calls per second overall)."""
    samples = []
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(calls // 100):
        t0 = time.perf_counter_ns()
        for _ in range(100):
            fn()
        samples.append((time.perf_counter_ns() - t0) / 100)
    total = time.perf_counter_ns() - start
    return statistics.median(samples), calls / (total / 1e9)


def baseline() -> Any:
    """The same check with a dict and an if: the floor any engine call is compared to."""
    meters = {("u", "hard"): Decimal(0)}
    limit = Decimal(10**12)

    def allow() -> bool:
        key = ("u", "hard")
        new = meters[key] + 1
        if new > limit:
            return False
        meters[key] = new
        return True

    return allow


SEED_003 = """
policy: {
    credits: { claude_sonnet_4: { overhead_cost: 1.5e-7, price: { amount: 0.0003 } } }
    plans: { starter: { default: true, entitlements: { ai_chat: { limit: {
        credit: 'claude_sonnet_4', mode: 'soft', value: 16667, resets: true, reset_sch: 'monthly:1' } } } } }
}
"""


def seed003(calls: int, plain_ns: float) -> None:
    """Seed 003's policy: a soft monthly limit, two overage-only caps with their own clocks, a promo grant."""
    print("seed 003 (soft limit, 2 caps, promo grant; ratio to the plain hard limit, events off)")
    for events in (False, True):
        engine = Limitr.new(SEED_003, format="stof", clock=ManualClock(datetime(2026, 3, 2, tzinfo=UTC)))
        engine.create_customer("cus_123", "starter")
        engine.add_customer_cap(
            "cus_123", 10**9, cap_id="monthly", overage_only=True, ignore_grants=True, reset_sch="monthly:1"
        )
        engine.add_customer_cap(
            "cus_123", 10**9, cap_id="weekly", overage_only=True, ignore_grants=True, reset_sch="weekly:mon"
        )
        engine.grant("cus_123", "usd", 10**6)
        engine.allow("cus_123", "ai_chat", 16667)  # from here on every call is overage drawn from the grant
        if events:
            engine.on("*", lambda e: None)
        ns, rate = timed(lambda: engine.allow("cus_123", "ai_chat", 10, event=events), calls)
        label = f"  allow, events {'on' if events else 'off'}"
        print(f"{label:44} {ns / 1000:10.2f} {rate:10,.0f} {ns / plain_ns:10.1f}×")
    engine = Limitr.new(SEED_003, format="stof", clock=ManualClock(datetime(2026, 3, 2, tzinfo=UTC)))
    engine.create_customer("cus_123", "starter")

    def pair() -> None:
        hold = engine.reserve("cus_123", "ai_chat", 100)
        assert hold is not None
        engine.settle("cus_123", "ai_chat", hold, 90, event=False)

    ns, rate = timed(pair, calls // 4)
    print(f"{'  reserve + settle pair':44} {ns / 1000:10.2f} {rate:10,.0f} {ns / plain_ns:10.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50_000)
    calls = parser.parse_args().calls
    base_ns, base_rate = timed(baseline(), calls)
    print(f"baseline dict-and-if: {base_ns / 1000:.2f} µs median, {base_rate:,.0f} calls/s")
    print(f"{'scenario':44} {'median µs':>10} {'calls/s':>10} {'× baseline':>11}")
    plain_ns = 0.0
    for name, ent in (("plain hard limit", "hard"), ("soft monthly limit, tiered price", "soft")):
        for events in (False, True):
            engine = Limitr.new(POLICY, clock=ManualClock(datetime(2026, 3, 15, tzinfo=UTC)))
            engine.create_customer("u")
            if events:
                engine.on("*", lambda e: None)
            ns, rate = timed(lambda: engine.allow("u", ent, 1, event=events), calls)
            label = f"{name}, events {'on' if events else 'off'}"
            plain_ns = plain_ns or ns
            print(f"{label:44} {ns / 1000:10.2f} {rate:10,.0f} {ns / base_ns:10.1f}×")
    seed003(calls, plain_ns)
    engine = Limitr.new(POLICY, clock=ManualClock(datetime(2026, 3, 15, tzinfo=UTC)))
    count = 2000
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(count):
        engine.create_customer(f"c{i}")
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"memory: {used / count:,.0f} bytes per customer with 5 meters ({count} customers)")


if __name__ == "__main__":
    main()
