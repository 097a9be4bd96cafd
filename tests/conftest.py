"""Shared test helpers: paths to the repository's fixtures and sample policies."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_policies"
INVALID = SAMPLES / "invalid"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCENARIOS = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir() and p.name != "invalid")


@pytest.fixture
def samples() -> Path:
    return SAMPLES
