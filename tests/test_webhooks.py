"""Webhooks from the outbox, in process: the engine's delivery records and the service's real sender, against a
real receiver on 127.0.0.1, on every store, with engine time on a ManualClock (retries are due when the test
advances it; nothing sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from limitr_py import InvalidArgumentError, Limitr, ManualClock
from limitr_py.engine import webhooks as webhook_records
from limitr_py.service import webhook_config
from limitr_py.service.webhooks import Dispatcher, register
from limitr_py.stores import open_store
from tests.engine_helpers import START, Engines
from tests.webhook_receiver import SECRET, Receiver

DOC: dict[str, Any] = {
    "policy": {
        "credits": {"call": {}, "token": {"price": {"amount": 0.01}}},
        "plans": {
            "free": {
                "default": True,
                "entitlements": {
                    "api": {"limit": {"credit": "call", "mode": "hard", "value": 5}},
                    "tokens": {"limit": {"credit": "token", "mode": "soft", "value": 100}},
                },
            }
        },
        "notifications": {"overage-alert": {"events": ["meter-overage"], "when": "overage > 10"}},
    }
}
SCHEDULE = ("1s", "2s", "4s")
"""Three waits: an undeliverable message is tried 4 times, then dead-lettered."""


def config(url: str, events: tuple[str, ...] = ("*",), name: str = "hooks") -> webhook_config.WebhooksConfig:
    endpoint = webhook_config.EndpointConfig(name, url, events, Webhook(SECRET), SCHEDULE, "2s")
    return webhook_config.WebhooksConfig((endpoint,), 1.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(strict_time=False)  # signed at the ManualClock's time: `sign` checks, `verify` would refuse
    yield made
    made.close()


class Fleet:
    """Engines on one store, each with the endpoint registered and a dispatcher whose rounds the test runs."""

    def __init__(self, engines: Engines, receiver: Receiver, events: tuple[str, ...] = ("*",)) -> None:
        url = engines.url()
        # every `memory://` is a store of its own: the engines of a memory fleet share one store object
        self.store: Any = open_store(url) if url.startswith("memory") else url
        self.clock = ManualClock(START)
        self.engines = engines
        self.cfg = config(receiver.url, events)
        self.dispatchers: list[Dispatcher] = []

    def engine(self) -> tuple[Limitr, Dispatcher]:
        engine = self.engines.adopt(Limitr.new(DOC, store=self.store, clock=self.clock))
        register(engine, self.cfg)
        dispatcher = Dispatcher(self.cfg)
        self.dispatchers.append(dispatcher)
        return engine, dispatcher

    def close(self) -> None:
        for d in self.dispatchers:
            d.close()


def drain(dispatcher: Dispatcher, engine: Limitr) -> int:
    """Rounds until one claims nothing (a customer's messages go one at a time, in order): how many were sent."""
    sent = 0
    while claimed := dispatcher.round(engine):
        sent += claimed
    return sent


@pytest.fixture
def fleet(engines: Engines, receiver: Receiver) -> Iterator[Fleet]:
    made = Fleet(engines, receiver)
    yield made
    made.close()


def test_every_event_is_delivered_signed_with_exact_decimals(fleet: Fleet, receiver: Receiver) -> None:
    engine, dispatcher = fleet.engine()
    engine.create_customer("u1")
    assert engine.allow("u1", "tokens", "112.5")  # 12.5 over the 100 included: meter-overage, and overage > 10
    assert drain(dispatcher, engine) == 3
    got = receiver.wait_for(3)
    assert all(r.signed for r in got)
    by_type = {r.body["type"]: r for r in got}
    assert set(by_type) == {"customer-set", "meter-overage", "overage-alert"}
    overage = by_type["meter-overage"].body
    # the notification is the same event under its own name: one event id, two messages with ids of their own
    assert by_type["overage-alert"].body["id"] == overage["id"]
    assert by_type["overage-alert"].id != by_type["meter-overage"].id
    assert overage["data"]["customer"] == "u1"
    assert overage["data"]["meter"]["value"] == "112.5"  # exact decimal strings, not floats
    assert overage["data"]["overage"] == "12.5"
    assert overage["timestamp"] == START.isoformat()
    assert dispatcher.round(engine) == 0  # acknowledged: nothing is owed any more
    assert len(receiver.received) == 3
    assert {d.state for d in engine.webhook_deliveries()} == {"delivered"}
    assert not [e for e in engine.store.pending() if webhook_records.endpoint_of(e.consumers)]


def test_a_receiver_failing_three_times_gets_the_event_once_acknowledged(fleet: Fleet, receiver: Receiver) -> None:
    engine, dispatcher = fleet.engine()
    receiver.statuses = [500, 503, 502]
    engine.create_customer("u1")
    waits = [timedelta(seconds=s) for s in (1, 2, 4)]
    for attempt, wait in enumerate(waits, start=1):
        assert dispatcher.round(engine) == 1
        (d,) = engine.webhook_deliveries()
        assert (d.state, d.attempts, d.last_status) == ("pending", attempt, receiver.received[-1].status)
        # the wait is the schedule's, stretched or shrunk by up to 20% (jitter)
        assert d.next_try is not None
        assert wait * 4 / 5 <= d.next_try - fleet.clock.now() <= wait * 6 / 5
        assert dispatcher.round(engine) == 0  # not due yet
        fleet.clock.advance(wait * 2)
    assert dispatcher.round(engine) == 1
    assert [r.status for r in receiver.received] == [500, 503, 502, 200]
    assert len({r.id for r in receiver.received}) == 1  # the same message, by its webhook-id, every time
    (d,) = engine.webhook_deliveries()
    assert (d.state, d.attempts, d.last_status) == ("delivered", 4, 200)
    fleet.clock.advance(timedelta(hours=1))
    assert dispatcher.round(engine) == 0
    assert len(receiver.received) == 4


def test_a_dead_letter_is_listed_and_can_be_sent_again(fleet: Fleet, receiver: Receiver) -> None:
    engine, dispatcher = fleet.engine()
    receiver.statuses = [500] * 4
    engine.create_customer("u1")
    for _ in range(4):
        assert dispatcher.round(engine) == 1
        fleet.clock.advance(timedelta(seconds=10))
    (dead,) = engine.webhook_deliveries(state="dead")
    assert (dead.attempts, dead.last_status) == (4, 500)
    assert dispatcher.round(engine) == 0  # out of the outbox: nothing more is tried
    assert engine.webhook_delivery(dead.id) == dead
    with pytest.raises(InvalidArgumentError, match="a delivery id is"):
        engine.retry_webhook("not-a-delivery")
    again = engine.retry_webhook(dead.id)
    assert again is not None
    assert (again.state, again.attempts) == ("pending", 0)
    assert dispatcher.round(engine) == 1
    assert receiver.received[-1].status == 200
    assert engine.webhook_delivery(dead.id).state == "delivered"  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError, match="only a dead letter"):
        engine.retry_webhook(dead.id)


@pytest.mark.parametrize(("status", "state"), [(400, "dead"), (410, "dead"), (429, "pending"), (408, "pending")])
def test_a_refusal_is_dead_at_once_and_throttling_is_retried(
    fleet: Fleet, receiver: Receiver, status: int, state: str
) -> None:
    engine, dispatcher = fleet.engine()
    receiver.statuses = [status]
    engine.create_customer("u1")
    assert dispatcher.round(engine) == 1
    (d,) = engine.webhook_deliveries()
    assert (d.state, d.attempts, d.last_status) == (state, 1, status)


def test_a_receiver_down_for_a_while_gets_everything_afterwards_in_order_per_customer(
    engines: Engines, receiver: Receiver
) -> None:
    fleet = Fleet(engines, receiver, events=("customer-set", "meter-overage"))
    try:
        _down_then_up(fleet, receiver)
    finally:
        fleet.close()


def _down_then_up(fleet: Fleet, receiver: Receiver) -> None:
    engine, dispatcher = fleet.engine()
    receiver.down()
    for customer in ("u1", "u2"):
        engine.create_customer(customer)
    for n in range(1, 4):
        for customer in ("u1", "u2"):
            engine.allow(customer, "tokens", 100 + n)  # over the 100 included each time: meter-overage
    assert len(engine.webhook_deliveries()) == 8  # each customer: customer-set, then 3 meter-overage
    for _ in range(3):  # connection refused: only the oldest message of each customer is tried
        assert dispatcher.round(engine) == 2
        fleet.clock.advance(timedelta(seconds=5))
    tried = [d for d in engine.webhook_deliveries() if d.attempts]
    assert len(tried) == 2
    assert all(d.last_status is None and d.last_error for d in tried)
    receiver.up()
    fleet.clock.advance(timedelta(seconds=10))
    assert drain(dispatcher, engine) == 8
    got = receiver.wait_for(8)
    assert len(got) == 8
    for customer in ("u1", "u2"):
        mine = [r.body for r in got if customer in (r.body["data"].get("customer"), r.body["data"].get("id"))]
        assert [m["type"] for m in mine] == ["customer-set"] + ["meter-overage"] * 3
        # 101, then +102, then +103: in the order they were committed
        assert [m["data"]["meter"]["value"] for m in mine[1:]] == ["101", "203", "306"]


def test_a_claim_is_one_process_s_until_its_lease_runs_out(fleet: Fleet, receiver: Receiver) -> None:
    first, _ = fleet.engine()
    second, _ = fleet.engine()
    first.create_customer("u1")
    (mine,) = first.claim_webhooks()
    assert second.claim_webhooks() == []  # held by the first
    # the first process dies without an answer; its lease (twice the 2 s timeout, plus 1 s) runs out
    fleet.clock.advance(timedelta(seconds=5, milliseconds=1))
    (taken,) = second.claim_webhooks()
    assert (taken.id, taken.attempts) == (mine.id, 2)
    assert "stopped before it recorded" in (taken.last_error or "")
    assert first.finish_webhook(mine, status=200) is None  # too late: its outcome is not recorded
    done = second.finish_webhook(taken, status=200)
    assert done is not None and done.state == "delivered"


def test_engines_claiming_at_once_send_each_message_once(fleet: Fleet, receiver: Receiver) -> None:
    """Two processes' worth of engines on one store, claiming from threads at the same time."""
    pairs = [fleet.engine() for _ in range(2)]
    maker = pairs[0][0]
    for n in range(12):
        maker.create_customer(f"u{n}")
    start = threading.Barrier(2)

    def work(engine: Limitr, dispatcher: Dispatcher) -> None:
        start.wait()
        drain(dispatcher, engine)

    threads = [threading.Thread(target=work, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = receiver.wait_for(12)
    assert len(got) == 12 == len(receiver.received)
    assert len({r.id for r in got}) == 12


def test_in_process_handlers_and_webhooks_do_not_take_each_other_s_events(fleet: Fleet, receiver: Receiver) -> None:
    engine, dispatcher = fleet.engine()
    seen: list[str] = []
    engine.on("customer-set", lambda e: seen.append(e.id))
    engine.create_customer("u1")
    assert len(seen) == 1
    assert engine.deliver_pending() == 0  # the handler acknowledged; the webhook entry is not a handler's
    assert drain(dispatcher, engine) == 1
    assert receiver.wait_for(1)[0].body["id"] == seen[0]


def test_an_endpoint_gets_only_the_names_it_wants(engines: Engines, receiver: Receiver) -> None:
    fleet = Fleet(engines, receiver, events=("overage-alert",))
    try:
        engine, dispatcher = fleet.engine()
        engine.create_customer("u1")
        engine.allow("u1", "tokens", 105)  # 5 over: meter-overage, no alert
        engine.allow("u1", "tokens", 20)  # this call 20 over: the alert
        assert drain(dispatcher, engine) == 1
        (got,) = receiver.wait_for(1)
        assert (got.body["type"], got.body["data"]["overage"]) == ("overage-alert", "20")
    finally:
        fleet.close()


def test_registering_checks_names_and_arguments() -> None:
    engine = Limitr.new(DOC)
    with pytest.raises(InvalidArgumentError, match="did you mean `meter-overage`"):
        engine.add_webhook("a", ["meter-overrage"])
    with pytest.raises(InvalidArgumentError, match="endpoint name"):
        engine.add_webhook("a b")
    with pytest.raises(InvalidArgumentError, match="list of event names"):
        engine.add_webhook("a", "meter-overage")
    with pytest.raises(InvalidArgumentError, match="must be positive"):
        engine.add_webhook("a", retry_schedule=["0s"])
    engine.create_customer("u1")
    assert engine.store.pending() == []  # nothing registered, nothing owed
    assert engine.webhook_deliveries() == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("webhooks:\n  endpoints: {}\n", "webhooks.endpoints: Dictionary should have at least 1 item"),
        ("webhooks:\n  endpoints:\n    a: {url: 'ftp://x', secret: s}\n", "webhooks.endpoints.a.url"),
        ("webhooks:\n  endpoints:\n    a: {url: 'http://x', secret: 'whsec_%%%'}\n", "webhooks.endpoints.a.secret"),
        ("webhooks:\n  endpoints:\n    a: {url: 'http://x'}\n", "give one of `secret` or `secret_env`"),
        ("webhooks:\n  endpoints:\n    a: {url: 'http://x', secret: s, retry: [1s]}\n", "endpoints.a.retry"),
        ("webhooks:\n  endpoints:\n    a: {url: 'http://x', secret: s, timeout: 2 parsecs}\n", "a.timeout"),
        ("webhooks: [\n", ":2:1: not valid YAML: expected the node content"),
    ],
)
def test_a_bad_webhooks_file_is_refused_by_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(text.replace(" s}", f" {SECRET}}}").replace("secret: s,", f"secret: {SECRET},"))
    with pytest.raises(webhook_config.WebhookConfigError) as caught:
        webhook_config.load(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
