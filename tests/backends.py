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
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class RedisProcess:
    """A `redis-server` of the tests' own. Its log goes to a pipe read by a thread, so waiting for it to be ready
    (or for its cluster to form) is waiting on what the server says, not on the clock."""

    READY = "Ready to accept connections"
    CLUSTER_OK = "Cluster state changed: ok"

    def __init__(self, port: int, directory: Path, *options: str) -> None:
        server = shutil.which("redis-server")
        if server is None:
            unavailable("redis-server is not installed")
        self.port = port
        self._said = {self.READY: threading.Event(), self.CLUSTER_OK: threading.Event()}
        self.proc = subprocess.Popen(
            [
                str(server),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--save",
                "",
                "--logfile",
                "",
                *options,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            for text, said in self._said.items():
                if text in line:
                    said.set()

    def wait_for(self, text: str, timeout: float = 15) -> None:
        if not self._said[text].wait(timeout):
            self.stop()
            unavailable(f"redis-server on port {self.port} never said `{text}`")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=10)  # the log pipe ends with the process
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class RedisCluster:
    """Three masters as local `redis-server` processes in a temporary directory (Docker does not run here)."""

    def __init__(self, ports: tuple[int, ...] = CLUSTER_PORTS) -> None:
        self.ports = ports
        self.dir = Path(tempfile.mkdtemp(prefix="limitr-cluster-"))
        self.nodes: list[RedisProcess] = []

    def start(self) -> None:
        if all(reachable("127.0.0.1", p) for p in self.ports):
            return  # already running (started by .ci/run or an earlier session)
        for port in self.ports:
            node = self.dir / str(port)
            node.mkdir()
            self.nodes.append(
                RedisProcess(
                    port,
                    node,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node / "nodes.conf"),
                    "--appendonly",
                    "no",
                )
            )
        for node in self.nodes:
            node.wait_for(RedisProcess.READY)
        if len(self.ports) == 1:  # redis-cli will not create a cluster of fewer than 3 masters: give it every slot
            subprocess.run(
                ["redis-cli", "-p", str(self.ports[0]), "cluster", "addslotsrange", "0", "16383"],
                check=True,
                capture_output=True,
                timeout=30,
            )
        else:
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
        for node in self.nodes:
            node.wait_for(RedisProcess.CLUSTER_OK)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
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

SERVICE_MARKS = {"redis": "redis", "redis-cluster": "redis_cluster", "postgres": "postgres"}
"""The pytest marker of each backend that needs an external service (`-m "not postgres"` leaves it out)."""


def params() -> list[Any]:
    """The backend table as pytest parameters, each marked with the service it needs."""
    return [
        pytest.param(name, marks=[getattr(pytest.mark, SERVICE_MARKS[name])] if name in SERVICE_MARKS else [])
        for name in BACKENDS
    ]


def check_service(name: str) -> None:
    if name == "redis" and not reachable("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])):
        unavailable(f"no Redis server at {REDIS_URL}")
    if name == "postgres" and not reachable("127.0.0.1", 5432):
        unavailable(f"no PostgreSQL server at {POSTGRES_URL}")
