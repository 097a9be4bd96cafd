"""The cheap path of a plain `allow()` (issue 12): what it leaves out must change no answer, state or event.

A plain `allow()` builds no gates and no `Decision` (nobody asks why), and its commit checks only the records
the decision rests on. These tests compare it with the explained path on the same calls and look at the
commits it sends to a real store.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from limitr_py import Limitr
from limitr_py.stores import Commit, CommitResult, open_store
from tests.engine_helpers import Engines, Recorder, limit, policy

ENTS = {
    "hard": limit(20, resets=True, reset_inc="1hr"),
    "soft": limit(10, "tok", mode="soft"),
    "capped": limit(1000, "tok", mode="soft"),
}
CREDITS = {"unit": {}, "tok": {"price": {"amount": 0.5}}}

CALLS = st.lists(
    st.tuples(
        st.sampled_from(["u", "v", "nobody"]),
        st.sampled_from(["hard", "soft", "capped", "missing"]),
        st.integers(-3, 9),
        st.integers(0, 40),  # minutes to move the clock first
    ),
    max_size=40,
)


def two_engines() -> tuple[tuple[Limitr, Any], tuple[Limitr, Any]]:
    pair = []
    for _ in range(2):
        engine, clock = policy(ENTS, credits=CREDITS)
        for who in ("u", "v"):
            engine.create_customer(who)
        engine.add_customer_cap("v", 12, cap_id="budget")  # 24 tok at $0.5: a cap that binds on `capped`
        pair.append((engine, clock))
    return pair[0], pair[1]


@settings(max_examples=60, deadline=None)
@given(calls=CALLS)
def test_allow_and_check_answer_and_leave_exactly_what_their_explained_forms_do(
    calls: list[tuple[str, str, int, int]],
) -> None:
    (plain, plain_clock), (explained, explained_clock) = two_engines()
    plain_events, explained_events = Recorder(plain), Recorder(explained)
    for customer, entitlement, value, minutes in calls:
        plain_clock.advance(timedelta(minutes=minutes))
        explained_clock.advance(timedelta(minutes=minutes))
        assert plain.check(customer, entitlement, value) == explained.explain(customer, entitlement, value).allowed
        decision = explained.allow_explained(customer, entitlement, value)
        assert plain.allow(customer, entitlement, value) == decision.allowed
        assert decision.gates, "an explained call lists the gates it walked"
    assert plain.customers() == explained.customers()
    strip = [(e.name, e.payload) for e in plain_events.events]
    assert strip == [(e.name, e.payload) for e in explained_events.events]


@settings(max_examples=60, deadline=None)
@given(calls=CALLS)
def test_a_decision_without_its_gates_names_the_same_gate_limit_type_and_headroom(
    calls: list[tuple[str, str, int, int]],
) -> None:
    """`allow_explained(gates=False)` (what the HTTP service and simulate ask) skips listing the gates; what it
    does answer is what the explained call answers, and it leaves the same state and events."""
    (bare, bare_clock), (explained, explained_clock) = two_engines()
    bare_events, explained_events = Recorder(bare), Recorder(explained)
    for customer, entitlement, value, minutes in calls:
        bare_clock.advance(timedelta(minutes=minutes))
        explained_clock.advance(timedelta(minutes=minutes))
        quick = bare.allow_explained(customer, entitlement, value, gates=False)
        full = explained.allow_explained(customer, entitlement, value)
        assert (quick.allowed, quick.gate, quick.limit_type, quick.headroom) == (
            full.allowed,
            full.gate,
            full.limit_type,
            full.headroom,
        )
        assert quick.gates == ()
    assert bare.customers() == explained.customers()
    assert [(e.name, e.payload) for e in bare_events.events] == [(e.name, e.payload) for e in explained_events.events]


def test_explain_still_lists_every_gate_with_its_numbers() -> None:
    engine, _ = policy(ENTS, credits=CREDITS)
    engine.create_customer("u")
    assert engine.allow("u", "hard", 15)
    decision = engine.explain("u", "hard", 6)  # 15 + 6 > 20
    assert not decision.allowed and decision.gate == "limit" and decision.headroom == 5
    assert [g.name for g in decision.gates] == ["reset", "limit"]
    assert decision.gates[-1].detail["current"] == 15 and decision.gates[-1].detail["requested"] == 6


class Recording:
    """A real store that keeps every commit it is sent."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.url, self.encoded, self.remote = inner.url, inner.encoded, inner.remote
        self.commits: list[Commit] = []

    def commit(self, commit: Commit) -> CommitResult:
        self.commits.append(commit)
        return self.inner.commit(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_customer_found_by_id_is_committed_without_checking_its_alias_key(engines: Engines) -> None:
    # before, every commit also expected `alias:<id>` at version 0: on PostgreSQL a placeholder row per call
    store = Recording(open_store(engines.url()))
    with Limitr.new(
        {"policy": {"credits": {"unit": {}}, "plans": {"p": {"default": True, "entitlements": {"api": limit(10)}}}}},
        store=store,
    ) as engine:
        engine.create_customer("u", alt_ids=["u-alt"])
        store.commits.clear()
        assert engine.allow("u", "api", 3, event=False)
        assert [sorted(c.expected) for c in store.commits] == [["customer:u"]]
        store.commits.clear()
        assert engine.allow("u-alt", "api", 3, event=False)  # by alt id: the alias is what it rests on
        assert [sorted(c.expected) for c in store.commits] == [["alias:u-alt", "customer:u", "customer:u-alt"]]
        assert engine.value("u", "api") == D(6)


PROBED = {
    "hard": limit(20, resets=True, reset_inc="1hr"),
    "trailing": limit(10, hard_trailing=True),
    "fine": limit("5.5"),
    "floor": limit(8, minimum=3),
    "soft": limit(10, "tok", mode="soft"),
}
PROBE_CALLS = st.lists(
    st.tuples(
        st.sampled_from(["allow", "allow", "allow", "reserve", "release"]),
        st.sampled_from(["u", "v"]),
        st.sampled_from(sorted(PROBED)),
        st.sampled_from(["-1", "0", "0.5", "1", "2", "3", "4.999999999", "5", "7"]),
        st.integers(0, 70),  # minutes to move the clock first (holds live 10 minutes)
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(calls=PROBE_CALLS)
def test_a_probe_left_out_because_it_surely_passes_changes_nothing(
    calls: list[tuple[str, str, str, str, int]],
) -> None:
    """`limit-reached` is worked out by a probe after each allowed call; when a plain hard limit surely still
    has room, the probe is left out (decide._probe_passes). Beside an engine that always runs it, on hard,
    trailing, fractional and floored limits, with holds, refunds and resets: the same answers, state and
    events."""
    from limitr_py.engine import decide

    runs = []
    for shortcut in (True, False):
        decide.PROBE_SHORTCUT = shortcut
        try:
            engine, clock = policy(PROBED, credits=CREDITS)
            for who in ("u", "v"):
                engine.create_customer(who)
            events = Recorder(engine)
            answers: list[Any] = []
            holds: dict[tuple[str, str], list[str]] = {}
            for op, customer, entitlement, value, minutes in calls:
                clock.advance(timedelta(minutes=minutes))
                if op == "allow":
                    answers.append(engine.allow(customer, entitlement, value))
                elif op == "reserve":
                    hold = engine.reserve(customer, entitlement, value if D(value) > 0 else "1")
                    answers.append(hold is not None)
                    if hold is not None:
                        holds.setdefault((customer, entitlement), []).append(hold)
                elif holds.get((customer, entitlement)):
                    answers.append(engine.release(customer, entitlement, holds[customer, entitlement].pop()))
            runs.append(_without_hold_ids((answers, engine.customers(), [(e.name, e.payload) for e in events.events])))
        finally:
            decide.PROBE_SHORTCUT = True
    assert runs[0] == runs[1]


def _without_hold_ids(value: Any) -> Any:
    """Hold ids are random: each becomes `hold`, and a table of holds the list of its holds in order."""
    if isinstance(value, dict):
        if value and all(isinstance(k, str) and k.startswith("hold_") for k in value):
            return sorted((_without_hold_ids(v) for v in value.values()), key=repr)
        return {k: _without_hold_ids(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_hold_ids(v) for v in value]
    return "hold" if isinstance(value, str) and value.startswith("hold_") else value


def test_the_probe_still_reports_the_limit_reached_by_a_call() -> None:
    engine, _ = policy(PROBED, credits=CREDITS)
    engine.create_customer("u")
    events = Recorder(engine)
    assert engine.allow("u", "fine", "5")  # 0.5 left: the smallest call passes, nothing reached
    assert "limit-reached" not in events.names()
    assert engine.allow("u", "fine", "0.5")  # 5.5 of 5.5: the next call, however small, is denied
    assert events.names().count("limit-reached") == 1
    assert engine.allow("u", "trailing", "10")  # trailing: 10 of 10 allowed, the next one is not
    assert events.names().count("limit-reached") == 2
