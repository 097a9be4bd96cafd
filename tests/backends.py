"""The store backends every contract test runs on: one row per backend (limits' ALL_STORAGES idea).

Each test gets a fresh namespace (its own SQLite file, its own Redis or PostgreSQL key prefix). A backend whose
service is not reachable is skipped with the reason locally; with LIMITR_REQUIRE_SERVICES=1 (set by .ci/run) it
fails instead, so CI never skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("LIMITR_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("LIMITR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CLUSTER_PORTS = (7101, 7102, 7103)
REQUIRE = os.environ.get("LIMITR_REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (LIMITR_REQUIRE_SERVICES=1: CI must not skip)")
    pytest.skip(reason)


def _namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


class RedisCluster:
    """Three masters as local `redis-server` processes in a temporary directory (Docker does not run here)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="limitr-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            unavailable("redis-server is not installed")
            return
        if all(reachable("127.0.0.1", p) for p in CLUSTER_PORTS):
            return  # already running (started by .ci/run or an earlier session)
        for port in CLUSTER_PORTS:
            node = self.dir / str(port)
            node.mkdir()
            self.procs.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node), "--save", "",
                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while not all(reachable("127.0.0.1", p) for p in CLUSTER_PORTS):
            if time.monotonic() > deadline:
                unavailable("the local redis cluster nodes did not start")
            time.sleep(0.05)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in CLUSTER_PORTS),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 15
        while b"cluster_state:ok" not in subprocess.run(
                ["redis-cli", "-p", str(CLUSTER_PORTS[0]), "cluster", "info"], capture_output=True).stdout:
            if time.monotonic() > deadline:
                unavailable("the local redis cluster did not become ready")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def memory_url(tmp: Path) -> str:
    return "memory://"


def sqlite_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / (_namespace() + '.db')}"


def redis_url(tmp: Path) -> str:
    return f"{REDIS_URL}?prefix={_namespace()}"


def cluster_url(tmp: Path) -> str:
    return f"redis+cluster://127.0.0.1:{CLUSTER_PORTS[0]}?prefix={_namespace()}"


def postgres_url(tmp: Path) -> str:
    return f"{POSTGRES_URL}?prefix={_namespace()}"


BACKENDS: dict[str, Callable[[Path], str]] = {
    "memory": memory_url,
    "sqlite": sqlite_url,
    "redis": redis_url,
    "redis-cluster": cluster_url,
    "postgres": postgres_url,
}


def check_service(name: str) -> None:
    if name == "redis" and not reachable("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])):
        unavailable(f"no Redis server at {REDIS_URL}")
    if name == "postgres" and not reachable("127.0.0.1", 5432):
        unavailable(f"no PostgreSQL server at {POSTGRES_URL}")
