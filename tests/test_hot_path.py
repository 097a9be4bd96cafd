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
