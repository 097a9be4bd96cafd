"""Webhooks from `limitr serve`: real server processes on 127.0.0.1 delivering to a real receiver, on the
durable stores; one process killed between a commit and its delivery, two processes sharing the work."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from limitr_py import Limitr, cli
from tests import backends
from tests.engine_helpers import Engines
from tests.service_helpers import POLICY, Server
from tests.webhook_receiver import SECRET, Receiver

DURABLE = [p for p in backends.params() if p.values[0] in ("sqlite", "redis", "postgres")]
SHARED = [p for p in backends.params() if p.values[0] in ("redis", "postgres")]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY), encoding="utf-8")
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()  # signed at the real time by a real process: verified with the timestamp checked too
    yield made
    made.close()


def hooks_file(tmp_path: Path, receiver: Receiver, schedule: str = "[200ms, 200ms]") -> Path:
    path = tmp_path / "webhooks.yaml"
    path.write_text(
        "webhooks:\n"
        "  poll_interval: 100ms\n"
        "  endpoints:\n"
        "    billing:\n"
        f"      url: {receiver.url}\n"
        "      events: ['*']\n"
        f"      secret: {SECRET}\n"
        f"      retry_schedule: {schedule}\n"
        "      timeout: 500ms\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def store_of(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    made: list[Engines] = []

    def url(backend: str) -> str:
        backends.check_service(backend)
        engines = Engines(backend, tmp_path)
        made.append(engines)
        return engines.url()

    yield url
    for engines in made:
        engines.clean_up()


def until(check: Callable[[], Any], tries: int = 2000) -> Any:
    """Ask a real server again until `check` answers something true (each ask is a request: bounded)."""
    for _ in range(tries):
        found = check()
        if found:
            return found
    raise AssertionError("the server never got there")


@pytest.mark.parametrize("backend", DURABLE)
def test_committed_events_reach_the_receiver_signed_and_are_listed(
    backend: str, store_of: Callable[[str], str], policy_file: Path, tmp_path: Path, receiver: Receiver
) -> None:
    hooks = hooks_file(tmp_path, receiver)
    with Server(policy_file, store_of(backend), "--webhooks", str(hooks)) as server:
        http = server.client
        assert http.post("/v1/customers", json={"id": "acme"}).status_code == 201
        # 150 tokens on a soft limit of 100: meter-overage, 50 over
        allowed = http.post("/v1/allow", json={"customer": "acme", "entitlement": "tokens", "value": 150})
        assert allowed.json()["allowed"]
        got = receiver.wait_for(2)
        assert all(r.signed for r in got)  # standardwebhooks' verify, timestamp included
        assert [r.body["type"] for r in got] == ["customer-set", "meter-overage"]
        assert got[1].body["data"]["overage"] == "50" and got[1].body["data"]["customer"] == "acme"
        listed = until(lambda: [d for d in http.get("/v1/webhooks/deliveries").json()["deliveries"]
                                if d["state"] == "delivered"][1:])  # fmt: skip
        assert listed
        deliveries = http.get("/v1/webhooks/deliveries", params={"state": "delivered"}).json()["deliveries"]
        assert {d["id"] for d in deliveries} == {r.id for r in got}
        one = http.get(f"/v1/webhooks/deliveries/{got[0].id}").json()
        assert (one["endpoint"], one["attempts"], one["last_status"]) == ("billing", 1, 200)
        assert one["event"]["name"] == "customer-set"
        assert http.get("/v1/webhooks/deliveries/whd_" + "0" * 32).status_code == 404
        assert http.get("/v1/webhooks/deliveries/nonsense").status_code == 404
        assert http.get("/v1/webhooks/deliveries", params={"state": "lost"}).status_code == 422


@pytest.mark.parametrize("backend", DURABLE)
def test_a_process_killed_between_commit_and_delivery_delivers_after_restart(
    backend: str, store_of: Callable[[str], str], policy_file: Path, tmp_path: Path, receiver: Receiver
) -> None:
    hooks, url = hooks_file(tmp_path, receiver), store_of(backend)
    receiver.hang = True  # takes the message and never answers: the sender is mid-delivery when it dies
    first = Server(policy_file, url, "--webhooks", str(hooks))
    try:
        assert first.client.post("/v1/customers", json={"id": "acme"}).status_code == 201
        (sent,) = receiver.wait_received(1)
    finally:
        first.proc.kill()  # SIGKILL: no shutdown, no answer recorded
        first.stop()
    receiver.hang = False
    with Server(policy_file, url, "--webhooks", str(hooks)):
        # the dead process's claim runs out (2 × 500 ms + 1 s) and the new process sends the message again
        (got,) = receiver.wait_for(1)
    assert got.id == sent.id and got.signed
    assert got.body == sent.body


@pytest.mark.parametrize("backend", SHARED)
def test_two_service_processes_deliver_each_event_once(
    backend: str, store_of: Callable[[str], str], policy_file: Path, tmp_path: Path, receiver: Receiver
) -> None:
    hooks, url = hooks_file(tmp_path, receiver), store_of(backend)
    with (
        Server(policy_file, url, "--webhooks", str(hooks)) as one,
        Server(policy_file, url, "--webhooks", str(hooks)) as two,
    ):
        for n in range(30):
            server = (one, two)[n % 2]
            assert server.client.post("/v1/customers", json={"id": f"c{n}"}).status_code == 201
        got = receiver.wait_for(30)
        # both dispatchers look at every entry; each message was claimed, and sent, by one of them
        assert len({r.id for r in got}) == 30
        assert len(receiver.received) == 30


def test_a_dead_letter_is_listed_and_sent_again_over_http(
    store_of: Callable[[str], str], policy_file: Path, tmp_path: Path, receiver: Receiver
) -> None:
    hooks = hooks_file(tmp_path, receiver, schedule="[100ms, 100ms]")
    receiver.statuses = [500, 500, 500]  # every attempt of the schedule fails: dead after the third
    with Server(policy_file, store_of("sqlite"), "--webhooks", str(hooks)) as server:
        http = server.client
        http.post("/v1/customers", json={"id": "acme"})
        server.wait_for("dead-lettered after 3 attempts")
        (dead,) = http.get("/v1/webhooks/deliveries", params={"state": "dead"}).json()["deliveries"]
        assert (dead["attempts"], dead["last_status"]) == (3, 500)
        retried = http.post(f"/v1/webhooks/deliveries/{dead['id']}/retry")
        assert retried.status_code == 200, retried.text
        assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
        (got,) = receiver.wait_for(1)
        assert got.id == dead["id"] and len(receiver.received) == 4
        until(lambda: http.get(f"/v1/webhooks/deliveries/{dead['id']}").json()["state"] == "delivered")
        metrics = http.get("/metrics").text
        for outcome, count in (("retry", 2), ("dead", 1), ("delivered", 1)):
            assert f'limitr_webhook_attempts_total{{endpoint="billing",outcome="{outcome}"}} {count}.0' in metrics
        again = http.post(f"/v1/webhooks/deliveries/{dead['id']}/retry")
        assert again.status_code == 409 and "only a dead letter" in again.json()["detail"]


def test_serve_refuses_a_webhooks_file_that_names_no_such_event(policy_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(
        f"webhooks:\n  endpoints:\n    a: {{url: 'http://127.0.0.1:9/x', secret: {SECRET}, events: [meter-overrage]}}\n"
    )
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["serve", str(policy_file), "--store", "memory://", "--webhooks", str(path)], out, err) == 2
    assert "no event is named `meter-overrage`; did you mean `meter-overage`?" in err.getvalue()
    assert str(path) in err.getvalue()


@pytest.mark.parametrize("keep", [True, False])
def test_the_service_keeps_each_customer_s_recent_events_unless_told_not_to(
    keep: bool, store_of: Callable[[str], str], policy_file: Path
) -> None:
    url = store_of("sqlite")
    with Server(policy_file, url, *([] if keep else ["--no-event-history"])) as server:
        assert server.client.post("/v1/customers", json={"id": "acme"}).status_code == 201
        tokens = {"customer": "acme", "entitlement": "tokens", "value": 150}
        assert server.client.post("/v1/allow", json=tokens).json()["allowed"]
        with Limitr.new(policy_file, store=url) as engine:
            if keep:  # the server's background thread records them: asked until it has
                until(lambda: len(engine.recent_events("acme")) == 2)
                assert [e.name for e in engine.recent_events("acme")] == ["meter-overage", "customer-set"]
            else:
                assert engine.recent_events("acme") == []
                assert engine.store.pending() == []  # nothing owed to a history either
