"""Lazy period resets for rolling and calendar limits (reference/limitr.md §2.12, SPEC §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.engine_helpers import Engines, Recorder, limit


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_rolling_period_is_anchored_at_customer_creation_and_a_boundary_instant_closes_the_old_period(
    engines: Engines,
) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_inc="1day")}, start=at(2026, 3, 15, 10))
    engine.create_customer("u")
    clock.set(at(2026, 3, 15, 20))  # first use ten hours later: the period still started at creation
    engine.allow("u", "api", 10)
    assert engine.resets("u", "api") == at(2026, 3, 16, 10)
    clock.set(at(2026, 3, 16, 10))  # exactly one period later: still the old one (`now − started <= inc`)
    assert engine.value("u", "api") == 10 and not engine.allow("u", "api", 1)
    clock.advance(timedelta(microseconds=1))
    assert engine.value("u", "api") == 0 and engine.allow("u", "api", 1)
    clock.set(at(2026, 3, 20, 9))  # several periods skipped: the current one started on the 19th at 10:00
    assert engine.resets("u", "api") == at(2026, 3, 20, 10)
    assert engine.allow("u", "api", 10)


def test_resetting_limit_without_an_interval_uses_thirty_days(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True)})
    engine.create_customer("u")
    engine.allow("u", "api", 10)
    clock.advance(timedelta(days=30))
    assert not engine.allow("u", "api", 1)
    clock.advance(timedelta(seconds=1))
    assert engine.allow("u", "api", 1)


def test_reads_show_the_new_period_without_changing_state(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_sch="monthly:1")})
    engine.create_customer("u")
    engine.allow("u", "api", 7)
    clock.set(at(2026, 4, 1))
    before = engine.customers()
    assert engine.value("u", "api") == 0 and engine.remaining("u", "api") == 10 and engine.check("u", "api", 10)
    assert engine.customers() == before


def test_a_denied_call_still_starts_the_new_period_and_reports_it(engines: Engines) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_sch="monthly:1")})
    engine.create_customer("u")
    engine.allow("u", "api", 7)
    clock.set(at(2026, 4, 2))
    rec = Recorder(engine)
    assert not engine.allow("u", "api", 11)
    assert rec.names() == ["period-closed", "meter-reset", "meter-limit"]
    meter = engine.customer_state("u").meters["api"]  # type: ignore[union-attr]
    assert meter.started == at(2026, 4, 1) and meter.value == 0


def test_event_order_on_a_reset_call_past_a_soft_limit(engines: Engines) -> None:
    engine, clock = engines.policy({"chat": limit(5, mode="soft", resets=True, reset_sch="weekly:mon")})
    engine.create_customer("u")
    engine.allow("u", "chat", 3)
    clock.set(at(2026, 3, 16, 8))  # Monday
    rec = Recorder(engine)
    engine.allow("u", "chat", 8)
    assert rec.names() == ["period-closed", "meter-overage", "meter-reset"]
    assert rec.events[1].payload["meter"]["old"] == 3 and rec.events[1].payload["overage"] == 3
    closed = rec.events[0].payload
    assert (closed["entitlement"], closed["value"], closed["end"]) == ("chat", 3, at(2026, 3, 16))


# (schedule, a time inside the first period, the last instant of that period, the next period's start)
CALENDAR = [
    ("monthly:31", at(2026, 1, 31, 12), at(2026, 2, 27, 23, 59), at(2026, 2, 28)),  # clamped to short months
    ("monthly:last", at(2028, 1, 31, 1), at(2028, 2, 28, 23, 59), at(2028, 2, 29)),  # leap year
    ("monthly:1", at(2026, 12, 15), at(2026, 12, 31, 23, 59), at(2027, 1, 1)),
    ("weekly:sun", at(2026, 3, 15, 14), at(2026, 3, 21, 23, 59), at(2026, 3, 22)),
    # April and May have no 5th Tuesday
    ("nth_weekday:5:tue", at(2026, 3, 31, 9), at(2026, 6, 29, 23, 59), at(2026, 6, 30)),
    ("yearly:2-29", at(2027, 3, 1), at(2028, 2, 28, 23, 59), at(2028, 2, 29)),  # Feb 28 in 2027, Feb 29 in 2028
    ("quarterly:15", at(2026, 3, 20), at(2026, 4, 14, 23, 59), at(2026, 4, 15)),
    ("cron:0 9 * * 1", at(2026, 3, 16, 10), at(2026, 3, 23, 8, 59), at(2026, 3, 23, 9)),
]


@pytest.mark.parametrize(("schedule", "inside", "last", "boundary"), CALENDAR, ids=[c[0] for c in CALENDAR])
def test_calendar_limits_reset_exactly_at_the_period_boundary(
    engines: Engines, schedule: str, inside: datetime, last: datetime, boundary: datetime
) -> None:
    engine, clock = engines.policy({"api": limit(10, resets=True, reset_sch=schedule)}, start=inside)
    engine.create_customer("u")
    engine.allow("u", "api", 10)
    assert engine.resets("u", "api") == boundary
    clock.set(last)
    assert engine.value("u", "api") == 10 and not engine.allow("u", "api", 1)
    clock.set(boundary)
    assert engine.value("u", "api") == 0 and engine.allow("u", "api", 10)
    assert engine.customer_state("u").meters["api"].started == boundary  # type: ignore[union-attr]


def test_schedule_in_a_named_zone_resets_at_local_midnight(engines: Engines) -> None:
    engine, clock = engines.policy(
        {"api": limit(1, resets=True, reset_sch="monthly:1@Europe/Paris")}, start=at(2026, 3, 20)
    )
    engine.create_customer("u")
    engine.allow("u", "api", 1)
    clock.set(at(2026, 3, 31, 21, 59))  # 23:59 in Paris (CEST, UTC+2)
    assert not engine.allow("u", "api", 1)
    clock.set(at(2026, 3, 31, 22))  # April 1st, 00:00 in Paris
    assert engine.allow("u", "api", 1)
