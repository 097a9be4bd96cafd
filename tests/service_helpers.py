"""`limitr serve` as a real process on 127.0.0.1 for the service tests, reached with real HTTP (httpx)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

POLICY: dict[str, Any] = {
    "policy": {
        "currency": "USD",
        "credits": {
            "call": {"label": "API call"},
            "seat": {"label": "Seat"},
            "token": {"label": "Token", "price": {"amount": 0.01}},
        },
        "plans": {
            "free": {
                "default": True,
                "entitlements": {
                    "api": {"limit": {"credit": "call", "mode": "hard", "value": 5}},
                    "tokens": {"limit": {"credit": "token", "mode": "soft", "value": 100}},
                    "export": {"description": "a feature flag"},
                    "seats": {"limit": {"credit": "seat", "mode": "hard", "value": 2}},
                },
                "topups": {"pack": {"credit": "token", "value": 1000, "price": {"amount": 5}}},
            }
        },
    }
}
"""A hard limit of 5 calls, 100 included tokens then 0.01 each (an invoice with an overage line), a flag, 2 seats
for entities, a top-up of 1,000 tokens."""


class Server:
    """One `limitr serve` process; its log is read by a thread, so waiting for it is waiting on what it says."""

    def __init__(self, policy: Path, store: str, *options: str, command: list[str] | None = None) -> None:
        """`command`: another uvicorn command line to run instead (the benchmark's bare endpoint)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        serve = [sys.executable, "-m", "limitr_py", "serve", str(policy), "--store", store, "--port", "0", *options]
        self.proc = subprocess.Popen(
            command or serve,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.log: list[str] = []
        self._said = threading.Condition()
        self._port: int | None = None
        # every worker says it is up (with --workers, the parent names the port before its workers listen)
        self._workers = int(options[options.index("--workers") + 1]) if "--workers" in options else 1
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(60) or self._port is None:
            self.stop()
            raise RuntimeError("limitr serve did not start:\n" + "".join(self.log[-40:]))
        self.url = f"http://127.0.0.1:{self._port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_for(self, text: str, after: int = 0, timeout: float = 30) -> None:
        """Until a log line from the `after`-th on contains `text` (what the server says, not the clock)."""
        with self._said:
            if not self._said.wait_for(lambda: any(text in line for line in self.log[after:]), timeout):
                raise AssertionError(f"the server never said `{text}`:\n" + "".join(self.log[-20:]))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._said:
                self.log.append(line)
                self._said.notify_all()
            found = _RUNNING.search(line)
            if found:
                self._port = int(found.group(1))
            if "Application startup complete." in line:
                self._workers -= 1
            if self._port is not None and self._workers <= 0:
                self._ready.set()
        self._ready.set()  # the process ended: whoever waits stops waiting

    def stop(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
