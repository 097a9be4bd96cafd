"""Benchmark: allow() with all five Autumn billing controls armed, and `limitr simulate` throughput.

    python bench/bench_controls.py [--calls 20000] [--events 1000000]

Allow/s for a customer and for one of its entities with overage_allowed, spend_limits, usage_limits,
usage_alerts and auto_topups set, beside the plain hard-limit engine figure measured in the same run; then
events/s of `limitr simulate` on a generated file. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_engine import POLICY, timed  # type: ignore[import-not-found]

from limitr_py import Limitr, ManualClock
from limitr_py.cli import run

SAMPLES = Path(__file__).resolve().parent.parent / "sample_policies"

CONTROLS: dict[str, Any] = {
    "overage_allowed": [{"feature_id": "api_calls", "enabled": True}],
    "spend_limits": [{"feature_id": "api_calls", "overage_limit": 10**9}],
    "usage_limits": [
        {"feature_id": "api_calls", "limit": 10**9, "interval": "day"},
        {"feature_id": "credit", "limit": 10**9, "interval": "month"},
    ],
    "usage_alerts": [{"feature_id": "api_calls", "threshold": 80, "threshold_type": "usage_percentage"}],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    options = parser.parse_args()
    clock = ManualClock(datetime(2026, 3, 2, tzinfo=UTC))
    plain = Limitr.new(POLICY, clock=clock)
    plain.create_customer("u")
    plain_ns, plain_rate = timed(lambda: plain.allow("u", "hard", 1, event=False), options.calls)
    print(f"{'plain hard limit (engine baseline)':44} {plain_ns / 1000:8.2f} µs {plain_rate:10,.0f}/s")
    engine = Limitr.new(SAMPLES / "autumn_credit_system" / "policy.yaml", clock=clock)
    engine.create_customer("org")
    engine.add_entity("org", "ws")
    engine.update_billing_controls(
        "org", **CONTROLS, auto_topups=[{"feature_id": "credit", "threshold": -1, "quantity": 1000}]
    )
    engine.update_billing_controls("org", entity_id="ws", **CONTROLS)
    for who in ("org", "ws"):
        ns, rate = timed(lambda: engine.allow(who, "api_calls", 1, event=False), options.calls)
        label = f"five Autumn controls, {'customer' if who == 'org' else 'entity'}"
        print(f"{label:44} {ns / 1000:8.2f} µs {rate:10,.0f}/s {ns / plain_ns:6.1f}× plain")

    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        rng = random.Random(1)
        start = datetime(2026, 3, 1, tzinfo=UTC)
        step = timedelta(days=28) / options.events
        with events.open("w") as out:
            for i in range(options.events):
                out.write(
                    json.dumps(
                        {
                            "at": (start + step * i).isoformat(),
                            "customer": f"c{rng.randrange(10_000)}",
                            "entitlement": "api_calls",
                            "value": 1,
                        }
                    )
                    + "\n"
                )
        began = time.perf_counter()
        code = run(
            ["simulate", str(SAMPLES / "autumn_credit_system" / "policy.yaml"), str(events), "--format", "json"],
            io.StringIO(),
            io.StringIO(),
        )
        elapsed = time.perf_counter() - began
    print(
        f"simulate: {options.events:,} events in {elapsed:.1f} s = {options.events / elapsed:,.0f} events/s "
        f"(exit {code}; includes the report for 10,000 customers)"
    )


if __name__ == "__main__":
    main()
