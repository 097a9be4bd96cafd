"""Meter arithmetic: periods, history, rate, governor tokens (reference/limitr.md §2.11, §2.12, §3.6).

Rates are in units per millisecond, as in Limitr. All functions are pure; those that change a meter take one the
caller already copied.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Context, Decimal

from limitr_py.compile.graph import Limit
from limitr_py.engine.state import HISTORY_SIZE, ZERO, Hold, MeterState

_US = timedelta(microseconds=1)
_RATE = Context(prec=28, Emax=10**6, Emin=-(10**6))
"""The smoothed rate is an estimate (Limitr keeps a float), not an amount: 28 significant digits, where the
engine's 200-digit context would let it grow to 200 and be stored, encoded and decoded at that length."""


def ms_between(earlier: datetime, later: datetime) -> Decimal:
    return Decimal((later - earlier) // _US) / 1000


def periods_passed(started: datetime, period: timedelta, now: datetime) -> int:
    """How many whole rolling periods ended since `started`: how often `now − start > period` holds while the start
    steps forward (Limitr's rule, for meters, grants and caps alike: a boundary instant still belongs to the period
    it closes). That is ceil(elapsed / period) − 1 once more than one period elapsed, else 0."""
    elapsed, step = (now - started) // _US, period // _US
    return (elapsed - 1) // step if elapsed > step else 0


def period_start(limit: Limit, started: datetime, now: datetime) -> datetime:
    """Start of the period `now` falls in, for a meter whose current period began at `started`.

    Calendar: the schedule's period start if it is later than `started`. Rolling: `started` moved forward by
    the periods that passed (`periods_passed`).
    """
    if limit.reset_sch is not None:
        start = limit.reset_sch.start_of_period(now)
        return start if started < start else started
    period = limit.period
    assert period is not None
    return started + period * periods_passed(started, period, now)


def reset_pending(limit: Limit, meter: MeterState | None, now: datetime) -> datetime | None:
    """The new period start when the meter's period has ended, else None."""
    if meter is None or meter.started is None or not limit.resets:
        return None
    start = period_start(limit, meter.started, now)
    return start if start != meter.started else None


def next_reset(limit: Limit, meter: MeterState | None, now: datetime) -> datetime | None:
    """When the current period ends (None for limits that never reset)."""
    if not limit.resets:
        return None
    if limit.reset_sch is not None:
        return limit.reset_sch.next_period_start(now)
    period = limit.period
    assert period is not None
    if meter is None or meter.started is None:
        return now + period
    return period_start(limit, meter.started, now) + period


def reset(meter: MeterState, start: datetime) -> None:
    """Start a new period: usage, cost, history and governor state all begin again."""
    meter.started = start
    meter.value = ZERO
    meter.overhead = ZERO
    meter.history = ()
    meter.ewma_rate = None
    meter.governor_tokens = None
    meter.governor_last_refill = None
    meter.billed = ZERO
    meter.covered = ZERO
    meter.covered_units = ZERO


def rate(history: tuple[tuple[datetime, Decimal], ...]) -> Decimal:
    """Units per ms from the last two entries (0 with fewer, or when they share a timestamp)."""
    if len(history) < 2:
        return ZERO
    (t0, _), (t1, delta) = history[-2], history[-1]
    dt = ms_between(t0, t1)
    return delta / dt if dt > 0 else ZERO


def acceleration(history: tuple[tuple[datetime, Decimal], ...]) -> Decimal:
    """How the rate changed over the last three entries a, b, c: `rate(b→c) − rate(a→b)` (units per ms).

    Limitr's code computes `b.delta/dt2 − a.delta/dt1`, pairing each delta with the wrong interval; we take the
    difference of the two rates `rate()` itself reports, so a steady rate has zero acceleration.
    """
    if len(history) < HISTORY_SIZE:
        return ZERO
    (ta, _), (tb, db), (tc, dc) = history[-3:]
    dt1, dt2 = ms_between(ta, tb), ms_between(tb, tc)
    if dt1 <= 0 or dt2 <= 0:
        return ZERO
    return dc / dt2 - db / dt1


def push_history(meter: MeterState, delta: Decimal, alpha: Decimal, now: datetime) -> None:
    meter.history = (*meter.history, (now, delta))[-HISTORY_SIZE:]
    r = rate(meter.history)
    meter.ewma_rate = _RATE.plus(r if meter.ewma_rate is None else alpha * r + (1 - alpha) * meter.ewma_rate)


def governor_available(limit: Limit, meter: MeterState | None, now: datetime) -> Decimal:
    """Tokens in the bucket now: full when never used; else refilled since the last refill, up to capacity."""
    capacity = limit.governor_capacity or ZERO
    if meter is None or meter.governor_tokens is None or meter.governor_last_refill is None:
        return capacity
    refill = ms_between(meter.governor_last_refill, now) * (limit.governor_refill_rate or ZERO)
    return min(capacity, meter.governor_tokens + refill)


def governed(limit: Limit) -> bool:
    return limit.mode == "hard" and limit.governor_enabled and limit.governor_capacity is not None


def live_holds(meter: MeterState | None, now: datetime) -> dict[str, Hold]:
    """The meter's holds that have not expired (a hold counts up to and including its expiry instant)."""
    return {} if meter is None else {k: h for k, h in meter.holds.items() if h.expires >= now}
