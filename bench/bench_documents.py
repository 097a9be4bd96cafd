"""Benchmark: read, validate and compile a large policy in each format; validate a 10-file repo with the CLI.

    python bench/bench_documents.py [--plans 1000] [--entitlements 20]

Prints a table (seconds per stage, peak memory) and the CLI wall time. Not a test: no assertion on time.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

from limitr_py.compile import load_policy
from limitr_py.compile.build import Builder
from limitr_py.documents import FORMATS, load_document
from limitr_py.documents.writers import dump
from limitr_py.schema import validate_tree

ROOT = Path(__file__).resolve().parent.parent


def generate(plans: int, entitlements: int) -> dict[str, Any]:
    credits: dict[str, Any] = {
        "request": {"label": "Request", "price": {"amount": Decimal("0.001")}},
        "storage": {"label": "Storage", "stof_units": "MB", "price": {"amount": Decimal("0.02")}},
        "token": {
            "label": "Token",
            "pricing_model": "tiered",
            "overhead_cost": Decimal("0.000008"),
            "tiers": [
                {"up_to": 100_000, "price": {"amount": Decimal("0.00002")}},
                {"up_to": 1_000_000, "price": {"amount": Decimal("0.000015")}},
                {"price": {"amount": Decimal("0.00001")}},
            ],
        },
        "image": {
            "label": "Image",
            "pricing_model": "volume",
            "tiers": [{"up_to": 100, "price": {"amount": Decimal("0.04")}}, {"price": {"amount": Decimal("0.02")}}],
        },
    }
    names = list(credits)
    plan_map: dict[str, Any] = {}
    for p in range(plans):
        ents: dict[str, Any] = {}
        for e in range(entitlements):
            credit = names[e % len(names)]
            if e % 7 == 6:
                ents[f"feature_{e}"] = {"description": f"Feature flag {e}"}
                continue
            limit: dict[str, Any] = {
                "credit": credit,
                "mode": ("hard", "soft", "observe")[e % 3],
                "value": f"{p + 1}GB" if credit == "storage" else (p + 1) * 1000 + e,
                "resets": True,
            }
            if e % 2:
                limit["reset_sch"] = "monthly:1"
            else:
                limit["reset_inc"] = "30days"
            ents[f"feature_{e}"] = {"description": f"Feature {e} of plan {p}", "limit": limit}
        plan_map[f"plan_{p}"] = {
            "label": f"Plan {p}",
            "default": p == 0,
            "entitlements": ents,
            "topups": {"pack": {"credit": "token", "value": 100_000, "price": {"amount": Decimal(5)}}},
        }
    return {"policy": {"credits": credits, "plans": plan_map}}


def measure(text: str, fmt: str) -> dict[str, float]:
    gc.collect()
    t0 = time.perf_counter()
    doc = load_document(text, format=fmt)
    t1 = time.perf_counter()
    problems = validate_tree(doc)
    t2 = time.perf_counter()
    builder = Builder(doc)
    builder.build()
    t3 = time.perf_counter()
    assert not problems and not builder.problems, (problems[:3], builder.problems[:3])
    del doc, builder
    gc.collect()
    t4 = time.perf_counter()
    load_policy(text, format=fmt)  # what a user calls: the stages above, with collection held for the load
    t5 = time.perf_counter()
    return {"read": t1 - t0, "validate": t2 - t1, "compile": t3 - t2, "total": t3 - t0, "load_policy": t5 - t4}


def peak_memory(text: str, fmt: str) -> float:
    gc.collect()
    tracemalloc.start()
    doc = load_document(text, format=fmt)
    validate_tree(doc)
    Builder(doc).build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def cli_repo_seconds() -> float:
    """Wall time of `limitr validate` (a new process, imports included) on a 10-file policy repo."""
    samples = sorted(p for p in (ROOT / "sample_policies").rglob("policy.*"))[:10]
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(samples):
            shutil.copy(path, Path(tmp) / f"{i}_{path.parent.name}{path.suffix}")
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "limitr_py", "validate", tmp], check=True, capture_output=True)
            runs.append(time.perf_counter() - t0)
    return sorted(runs)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--entitlements", type=int, default=20)
    args = parser.parse_args()
    tree = generate(args.plans, args.entitlements)
    print(f"policy: {args.plans} plans x {args.entitlements} entitlements, 4 credits (tiered, volume, units)")
    print(
        f"{'format':<6} {'size MB':>8} {'read s':>8} {'validate s':>11} {'compile s':>10} {'total s':>8} "
        f"{'peak MiB':>9} {'load_policy s':>14}"
    )
    for fmt in FORMATS:
        text = dump(tree, fmt)
        best = min((measure(text, fmt) for _ in range(3)), key=lambda r: r["load_policy"])
        print(
            f"{fmt:<6} {len(text) / 1e6:>8.2f} {best['read']:>8.3f} {best['validate']:>11.3f} "
            f"{best['compile']:>10.3f} {best['total']:>8.3f} {peak_memory(text, fmt):>9.1f} "
            f"{best['load_policy']:>14.3f}"
        )
    print(f"cli: `limitr validate` on a 10-file repo (median of 5, new process each): {cli_repo_seconds():.3f} s")


if __name__ == "__main__":
    main()
