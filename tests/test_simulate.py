"""`limitr simulate`: a generated month of usage for 1,000 customers against a plain model of the policy."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from limitr_py.cli import run

POLICY = """
policy: {
    credits: { call: {}, tok: { price: { amount: 0.01 } } }
    plans: { basic: { default: true, price: { amount: 5 }, entitlements: {
        api: { limit: { credit: 'call', value: 100, resets: true, reset_sch: 'monthly:1' } }
        chat: { limit: { credit: 'tok', mode: 'soft', value: 50, resets: true, reset_sch: 'monthly:1' } }
    } } }
}
"""


def generate(path: Path, customers: int = 1000, per_customer: int = 20) -> list[dict[str, object]]:
    rng = random.Random(2026)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events = []
    for _ in range(customers * per_customer):
        at = start + timedelta(seconds=rng.randrange(0, 30 * 86400))
        events.append(
            {
                "at": at,
                "customer": f"c{rng.randrange(customers)}",
                "entitlement": rng.choice(["api", "chat"]),
                "value": rng.randrange(1, 15),
            }
        )
    events.sort(key=lambda e: e["at"])  # type: ignore[arg-type, return-value]
    path.write_text("".join(json.dumps({**e, "at": e["at"].isoformat()}) + "\n" for e in events))  # type: ignore[attr-defined]
    return events


def model(events: list[dict[str, object]]) -> tuple[int, int, dict[str, dict[str, int]]]:
    """The policy by hand: api is a hard 100 a month, chat always passes; every event is in March."""
    used: dict[str, dict[str, int]] = {}
    allowed = denied = 0
    for e in events:
        meters = used.setdefault(str(e["customer"]), {"api": 0, "chat": 0})
        value = int(e["value"])  # type: ignore[call-overload]
        if e["entitlement"] == "api" and meters["api"] + value > 100:
            denied += 1
            continue
        meters[str(e["entitlement"])] += value
        allowed += 1
    return allowed, denied, used


def test_a_generated_month_for_1000_customers_matches_the_model(tmp_path: Path) -> None:
    policy = tmp_path / "policy.stof"
    policy.write_text(POLICY)
    events = generate(tmp_path / "march.jsonl")
    out, err = io.StringIO(), io.StringIO()
    assert (
        run(["simulate", str(policy), str(tmp_path / "march.jsonl"), "--format", "json", "--progress"], out, err) == 0
    )
    result = json.loads(out.getvalue())
    allowed, denied, used = model(events)
    assert (result["events"], result["allowed"], result["denied"]) == (20000, allowed, denied)
    assert result["denials"] == ({"included": denied} if denied else {})
    assert result["created_customers"] == len(used)
    for ident, meters in used.items():
        customer = result["customers"][ident]
        assert customer["meters"]["api"]["value"] == str(meters["api"])
        assert customer["meters"]["chat"]["value"] == str(meters["chat"])
        # the plan fee (500 cents) plus chat overage past 50 at 1 cent a token
        assert customer["invoices"]["current"]["total"] == 500 + max(0, meters["chat"] - 50)
    # the progress bar (rich): events done of the total, rate and time left; a non-terminal gets its last state
    assert "simulating" in err.getvalue() and "20000/20000" in err.getvalue() and "events/s" in err.getvalue()


def test_times_in_engine_calls_are_iso_8601_text(tmp_path: Path) -> None:
    policy = tmp_path / "policy.stof"
    policy.write_text(POLICY)
    events = tmp_path / "events.jsonl"
    grant = {"id": "acme", "credit": "tok", "value": 100, "expires_on": "2026-03-05T00:00:00Z"}
    lines = [
        {"at": "2026-03-01T00:00:00Z", "create_customer": {"id": "acme"}},
        {"at": "2026-03-01T00:00:00Z", "grant": grant},
        {"at": "2026-03-02T00:00:00Z", "customer": "acme", "entitlement": "chat", "value": 80},  # 30 over: granted
        {"at": "2026-03-06T00:00:00Z", "customer": "acme", "entitlement": "chat", "value": 10},  # expired: billed
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    out = io.StringIO()
    assert run(["simulate", str(policy), str(events), "--format", "json"], out, io.StringIO()) == 0
    invoice = json.loads(out.getvalue())["customers"]["acme"]["invoices"]["current"]
    assert invoice["total"] == 500 + 10  # the fee, and 10 tokens past the grant's expiry at 1 cent
    for bad, message in [("tomorrow", "must be an ISO 8601 time"), ("2026-03-05T00:00:00", "needs a time zone")]:
        events.write_text(
            json.dumps({**lines[0]}) + "\n" + json.dumps({**lines[1], "grant": {**grant, "expires_on": bad}})
        )
        err = io.StringIO()
        assert run(["simulate", str(policy), str(events)], io.StringIO(), err) == 2
        assert f"line 2: `expires_on` {message}" in err.getvalue(), err.getvalue()


def test_human_output_and_engine_calls_in_the_events(tmp_path: Path) -> None:
    policy = tmp_path / "policy.stof"
    policy.write_text(POLICY)
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"at": "2026-03-01T00:00:00Z", "create_customer": {"id": "acme"}},
                {"at": "2026-03-01T00:00:00Z", "add_customer_cap": {"id": "acme", "value": 1.3, "cap_id": "budget"}},
                {"at": "2026-03-02T00:00:00Z", "customer": "acme", "entitlement": "chat", "value": 120},
                {"at": "2026-03-03T00:00:00Z", "customer": "acme", "entitlement": "chat", "value": 20},
                {"at": "2026-03-04T00:00:00Z", "customer": "ghost", "entitlement": "api", "value": 1},
            ]
        )
        + "\n"
    )
    out, err = io.StringIO(), io.StringIO()
    assert run(["simulate", str(policy), str(events), "--no-create-customers"], out, err) == 0
    text = out.getvalue()
    assert "events: 5  allowed: 1  denied: 2" in text  # the cap stops the second chat call; ghost is unknown
    assert "denials by limit type: cap 1, customer 1" in text
    assert "cap budget: 1.2 of 1.3" in text and "chat: 120 of 50" in text  # $1.20 spent; $0.20 more was denied
    assert "acme (plan `basic`)" in text  # on the default plan: named, not left blank
    assert "  current:\n    invoice of acme, 2026-03-01" in text
    assert re.search(r"chat overage +70 +0\.70\n", text) and re.search(r"total +5\.70 USD\n", text)


def test_bad_events_files_name_the_line(tmp_path: Path) -> None:
    policy = tmp_path / "policy.stof"
    policy.write_text(POLICY)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"at": "2026-03-02T00:00:00Z", "customer": "a", "entitlement": "api"}\n'
        '{"at": "2026-03-01T00:00:00Z", "customer": "a", "entitlement": "api"}\n'
    )
    out, err = io.StringIO(), io.StringIO()
    assert run(["simulate", str(policy), str(events)], out, err) == 2
    assert "line 2: events must be in time order" in err.getvalue()
    events.write_text('{"at": "2026-03-02T00:00:00Z", "customer": "a", "entitlement": "api", "value": "lots"}\n')
    assert run(["simulate", str(policy), str(events)], out, err) == 2
    assert "line 1:" in err.getvalue()
    assert run(["simulate", str(policy), str(tmp_path / "missing.jsonl")], out, err) == 2


HOSTILE_LINES = {
    "huge_integer": '{"at": "2026-03-02T10:00:00Z", "customer": "c1", "entitlement": "chat", "value": '
    + "9" * 5000
    + "}",
    "deep_json": "[" * 100_000,
    "arguments_not_an_object": '{"at": "2026-03-02T10:00:00Z", "grant": 5}',
    "year_out_of_range": '{"at": "9999-12-31T23:59:59Z", "customer": "c1", "entitlement": "chat", "value": 1}',
    "huge_exponent": '{"at": "2026-03-02T10:00:00Z", "customer": "c1", "entitlement": "chat", "value": 1e999999999}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_a_hostile_events_line_is_a_usage_error_with_one_line(tmp_path: Path, name: str) -> None:
    # before: a deep line and a year past 9000 escaped as internal errors (RecursionError, ValueError)
    policy = tmp_path / "p.stof"
    policy.write_text(POLICY, encoding="utf-8")
    events = tmp_path / "e.jsonl"
    events.write_text(HOSTILE_LINES[name] + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = run(["simulate", str(policy), str(events), "--format", "json"], out, err)
    assert code == 2 and err.getvalue().count("\n") == 1 and "line 1:" in err.getvalue()
    assert json.loads(out.getvalue())["error"]["exit"] == 2


AUTUMN = Path(__file__).resolve().parent.parent / "sample_policies" / "autumn_credit_system" / "policy.yaml"


@pytest.mark.parametrize("policy_text", ["stof", "autumn"])
def test_a_replay_decides_what_the_same_calls_made_one_by_one_decide(tmp_path: Path, policy_text: str) -> None:
    """simulate's replay (its lighter path: no gate list) against `allow_explained` with every gate listed, call
    by call on a clock set to each event's time: the same answers, denials by kind, meters, caps and invoices."""
    from collections import Counter

    from limitr_py import Limitr, ManualClock, load_policy
    from limitr_py.simulate import replay, report

    if policy_text == "stof":
        policy, entitlements = load_policy(POLICY, format="stof"), ["api", "chat"]
    else:  # a soft limit with a max overage of 5,000: many calls past it are denied by the billing control
        policy, entitlements = load_policy(AUTUMN), ["api_calls"]
    rng = random.Random(7)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events = sorted(
        (
            {
                "at": start + timedelta(seconds=rng.randrange(0, 60 * 86400)),  # two months: a reset in between
                "customer": f"c{rng.randrange(30)}",
                "entitlement": rng.choice(entitlements),
                "value": rng.choice([1, 5, 40, 400]),
            }
            for _ in range(3000)
        ),
        key=lambda e: e["at"],  # type: ignore[arg-type, return-value]
    )
    lines = [json.dumps({**e, "at": e["at"].isoformat()}) for e in events]  # type: ignore[attr-defined]
    replayed, summary = replay(lambda clock: Limitr(policy, clock=clock), lines)

    clock = ManualClock(events[0]["at"])  # type: ignore[arg-type]
    direct = Limitr(policy, clock=clock)
    allowed = denied = 0
    denials: Counter[str] = Counter()
    for e in events:
        clock.set(e["at"])  # type: ignore[arg-type]
        if direct.customer(str(e["customer"])) is None:
            direct.create_customer(str(e["customer"]))
        decision = direct.allow_explained(str(e["customer"]), str(e["entitlement"]), e["value"])  # type: ignore[arg-type]
        assert decision.gates  # the full path, gates listed
        if decision.allowed:
            allowed += 1
        else:
            denied += 1
            denials[decision.limit_type or decision.gate] += 1
    assert denied > 0 and allowed > 0
    assert (summary.allowed, summary.denied, dict(summary.denials)) == (allowed, denied, dict(denials))
    assert report(replayed, summary)["customers"] == report(direct, summary)["customers"]
