"""A real webhook receiver on 127.0.0.1 for the webhook tests: an HTTP server in a thread of the test.

It verifies every message's Standard Webhooks signature with its own copy of the secret (the `standardwebhooks`
package's `verify`, or its `sign` for messages signed at a manual clock's time, which `verify` would call too
old), answers from a script of statuses (then 200), and can hang (accept a message and never answer) or go down
(close its socket) and come back on the same port.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Received:
    id: str
    body: dict[str, Any]
    status: int  # what the receiver answered (0: it hung)
    signed: bool  # the signature verified


class Receiver:
    def __init__(self, *, statuses: list[int] | None = None, strict_time: bool = True) -> None:
        """`statuses`: answers to give, in order, before answering 200 to everything. `strict_time`: verify the
        timestamp against the real time too (messages from a real server process)."""
        self.statuses = list(statuses or [])
        self.strict_time = strict_time
        self.hang = False
        self.received: list[Received] = []
        self.changed = threading.Condition()
        self.signer = Webhook(SECRET)
        self._release = threading.Event()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                signed = receiver.verify(body, headers)
                if receiver.hang:
                    receiver.note(Received(headers.get("webhook-id", ""), json.loads(body), 0, signed))
                    receiver._release.wait(30)
                    return  # the connection closes without an answer
                with receiver.changed:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                # noted before answering: once the sender has its answer, the test sees what it sent
                receiver.note(Received(headers.get("webhook-id", ""), json.loads(body), status, signed))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()

    def down(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self.down()

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        try:
            if self.strict_time:
                self.signer.verify(body, headers)
                return True
            at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            expected = self.signer.sign(headers["webhook-id"], at, body)
            return expected in headers["webhook-signature"].split(" ")
        except Exception:
            return False

    def note(self, got: Received) -> None:
        with self.changed:
            self.received.append(got)
            self.changed.notify_all()

    def acked(self) -> list[Received]:
        with self.changed:
            return self._acked()

    def _acked(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Wait (on the receiver, a real process's work) until `count` messages were acknowledged."""
        with self.changed:
            ok = self.changed.wait_for(lambda: len(self._acked()) >= count, timeout)
        assert ok, f"only {len(self.acked())} of {count} webhooks acknowledged in {timeout}s: {self.received}"
        return self.acked()

    def wait_received(self, count: int, timeout: float = 30) -> list[Received]:
        with self.changed:
            ok = self.changed.wait_for(lambda: len(self.received) >= count, timeout)
        assert ok, f"only {len(self.received)} of {count} webhooks received in {timeout}s"
        return list(self.received)
