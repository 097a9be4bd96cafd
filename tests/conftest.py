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
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the test on one store backend: `engine_helpers.policy()` opens a fresh namespace of it."""
    name: str = request.param
    backends.check_service(name)
    if name == "redis-cluster":
        request.getfixturevalue("redis_cluster")
    tmp = tmp_path_factory.mktemp(name)
    opened: list[object] = []

    def factory() -> str:
        url = backends.BACKENDS[name](tmp)
        opened.append(url)
        return url

    engine_helpers.STORE_FACTORY = factory
    yield name
    engine_helpers.STORE_FACTORY = None
    for engine in engine_helpers.OPENED:
        inner = getattr(engine.store, "inner", engine.store)
        if hasattr(inner, "flush"):
            inner.flush()
        inner.close()
    engine_helpers.OPENED.clear()
