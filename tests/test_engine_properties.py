"""Invariants of metering against a plain-Python model (hypothesis state machine) and under threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal as D

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.engine_helpers import START, limit, policy

LIMIT = D(50)
PERIOD = timedelta(hours=6)


class HardLimitMachine(RuleBasedStateMachine):
    """A hard limit of 50 resetting every 6 hours, and a soft one beside it, driven by random calls and time.

    The model is the definition: the meter is the sum of the allowed values since the period began, a call is
    allowed when it does not take that sum past the limit (decrements always), and a period boundary instant
    still belongs to the period it closes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.engine, self.clock = policy(
            {"hard": limit(LIMIT, resets=True, reset_inc="6hr"), "soft": limit(LIMIT, mode="soft")}
        )
        self.engine.create_customer("u")
        self.period_start = START
        self.hard = D(0)
        self.soft = D(0)

    def _roll(self) -> None:
        now = self.clock.now()
        while now - self.period_start > PERIOD:
            self.period_start += PERIOD
            self.hard = D(0)

    @rule(value=st.integers(-20, 30).map(D) | st.decimals(-5, 20, places=3, allow_nan=False))
    def allow(self, value: D) -> None:
        self._roll()
        expected = value <= 0 or self.hard + value <= LIMIT
        assert self.engine.allow("u", "hard", value) == expected
        if expected:
            self.hard += value
        assert self.engine.allow("u", "soft", value)  # soft never denies
        self.soft += value

    @rule(value=st.integers(0, 60).map(D))
    def check(self, value: D) -> None:
        self._roll()
        assert self.engine.check("u", "hard", value) == (self.hard + value <= LIMIT)

    @rule(minutes=st.integers(0, 600))
    def advance(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @invariant()
    def meters_match_the_model(self) -> None:
        self._roll()
        assert self.engine.value("u", "hard") == self.hard <= LIMIT
        assert self.engine.value("u", "soft") == self.soft


TestHardLimit = HardLimitMachine.TestCase
TestHardLimit.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@pytest.fixture
def interleaved() -> Iterator[None]:
    """Switch threads every microsecond so calls really interleave between read and commit."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("interleaved")
def test_threads_hammering_one_customer_never_overspend() -> None:
    # 8 threads × 60 calls of 1 unit against a hard limit of 300: exactly 300 are allowed
    engine, _ = policy({"api": limit(300)})
    engine.create_customer("u")
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [engine.allow("u", "api", 1) for _ in range(60)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 300 and len(allowed) == 480
    assert engine.value("u", "api") == 300


@pytest.mark.usefixtures("interleaved")
def test_threads_on_different_customers_each_get_their_own_limit() -> None:
    engine, _ = policy({"api": limit(25)})
    for i in range(4):
        engine.create_customer(f"u{i}")
    results: dict[int, int] = {}

    def worker(i: int) -> None:
        results[i] = sum(engine.allow(f"u{i}", "api", 1) for _ in range(40))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: 25, 1: 25, 2: 25, 3: 25}


LIMIT_UNITS = D(20)
CEILING = D(30)
TTL = timedelta(minutes=1)


class HoldsMachine(RuleBasedStateMachine):
    """allow / reserve / settle / release / grant / advance on a hard limit of 20 units at $1 each, under a
    $30 spend cap. Grants let the hard limit run past its value, so the cap is what binds in the end.

    Invariants: posted + held ≤ limit + everything ever granted (only grants may carry usage past the limit);
    the cap never passes its ceiling (settles stay within their hold, which the cap already counted); `held`
    is the sum of the live holds.
    """

    def __init__(self) -> None:
        super().__init__()
        self.engine, self.clock = policy(
            {"gpu": limit(LIMIT_UNITS, "usd_unit")}, credits={"usd_unit": {"price": {"amount": 1}}}
        )
        self.engine.create_customer("u")
        self.engine.add_customer_cap("u", CEILING, cap_id="budget")
        self.holds: dict[str, tuple[D, object]] = {}
        self.granted = D(0)

    def _prune(self) -> None:
        now = self.clock.now()
        self.holds = {k: v for k, v in self.holds.items() if v[1] >= now}  # type: ignore[operator]

    @rule(value=st.integers(1, 8).map(D))
    def allow(self, value: D) -> None:
        self.engine.allow("u", "gpu", value)

    @rule(value=st.integers(1, 8).map(D))
    def reserve(self, value: D) -> None:
        self._prune()
        hold = self.engine.reserve("u", "gpu", value, ttl=TTL)
        if hold is not None:
            self.holds[hold] = (value, self.clock.now() + TTL)

    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        self._prune()
        if not self.holds:
            return
        hold = data.draw(st.sampled_from(list(self.holds)))  # insertion order: ids are random
        held, _ = self.holds.pop(hold)
        actual = data.draw(st.integers(0, int(held)).map(D))
        assert self.engine.settle("u", "gpu", hold, actual)
        assert not self.engine.settle("u", "gpu", hold, actual)  # exactly once

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self._prune()
        if not self.holds:
            return
        hold = data.draw(st.sampled_from(list(self.holds)))  # insertion order: ids are random
        del self.holds[hold]
        assert self.engine.release("u", "gpu", hold)

    @rule(value=st.integers(1, 5).map(D))
    def grant(self, value: D) -> None:
        assert self.engine.grant("u", "usd_unit", value) is not None
        self.granted += value

    @rule(seconds=st.integers(0, 90))
    def advance(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    @invariant()
    def bounds_hold(self) -> None:
        self._prune()
        held = self.engine.held("u", "gpu")
        assert held == sum((v for v, _ in self.holds.values()), D(0))
        value = self.engine.value("u", "gpu")
        assert value is not None and held is not None
        assert value + held <= LIMIT_UNITS + self.granted
        cap = self.engine.customer_cap("u", "budget")
        assert cap is not None and cap.meter_value <= CEILING


TestHolds = HoldsMachine.TestCase
TestHolds.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
