"""Shared test helpers: paths to the repository's fixtures and sample policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from limitr_py.engine import records

# Every store commit in the suite re-encodes what the encoding memo reuses and fails if an object changed after
# it was encoded (the copy-on-write rule the memo rests on; engine/records.py).
records.VERIFY_SHARED = True

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_policies"
INVALID = SAMPLES / "invalid"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCENARIOS = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir() and p.name != "invalid")


@pytest.fixture
def samples() -> Path:
    return SAMPLES


# -- store backends (tests/backends.py) ----------------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402

from tests import backends, engine_helpers  # noqa: E402


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[backends.RedisCluster]:
    cluster = backends.RedisCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=backends.params())
def backend(request: pytest.FixtureRequest) -> str:
    """The name of one row of the backend table; its service is checked (and a Redis Cluster started) first."""
    name: str = request.param
    backends.check_service(name)
    if name == "redis-cluster":
        request.getfixturevalue("redis_cluster")
    return name


@pytest.fixture
def engines(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[engine_helpers.Engines]:
    """Engines and store URLs on fresh namespaces of the backend under test, closed and emptied afterwards."""
    made = engine_helpers.Engines(backend, tmp_path_factory.mktemp(backend))
    yield made
    made.clean_up()
