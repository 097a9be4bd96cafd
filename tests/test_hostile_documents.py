"""Every refusal of a document is a PolicyError found in time and memory linear in its size (issue 10, item 8).

Two kinds of input: the named hostile documents of tests/hostile_documents.py (each measured in its own process,
so its peak memory is its own), and documents mutated from the sample policies with hostile fragments, on a
fixed seed (a longer run with other seeds is marked `slow`). The budgets are generous on purpose: the faults they
guard against cost 10 s to hours and gigabytes at these sizes, while a linear refusal takes well under a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_documents import CASES

TESTS = Path(__file__).resolve().parent
MIB = 1024 * 1024


def _budget_seconds(size: int) -> float:
    # a linear refusal here runs at 0.3-100 MB/s (Stof's lark parser is the slow end), and CI may be busy; the
    # quadratic ones this guards against took minutes to hours at these sizes
    return 10.0 + 1.0 * size / MIB


def _budget_bytes(size: int) -> int:
    return 96 * MIB + 24 * size  # the text, its lines and one tree of it, with room to spare


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_document_is_refused_in_linear_time_and_memory(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(TESTS / "hostile_documents.py"), name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS.parent,
    )
    assert done.returncode == 0, f"the process died (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["escaped"] is None, result["escaped"]
    expected = CASES[name][2]
    assert expected in result["codes"], result
    assert result["seconds"] <= _budget_seconds(result["size"]), result
    assert result["peak_bytes"] <= _budget_bytes(result["size"]), result


def _fuzz(seed: int, rounds: int, timeout: float) -> None:
    done = subprocess.run(
        [sys.executable, str(TESTS / "hostile_documents.py"), "--fuzz", str(seed), str(rounds)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=TESTS.parent,
    )
    assert done.returncode == 0, f"the process died (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["problems"] == [], json.dumps(result["problems"], indent=1)
    assert result["peak_bytes"] <= 1024 * MIB, result


def test_mutated_sample_documents_are_refused_within_budget() -> None:
    _fuzz(seed=20261203, rounds=600, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_sample_documents_are_refused_within_budget_long(seed: int) -> None:
    _fuzz(seed=seed, rounds=2_000, timeout=900)
