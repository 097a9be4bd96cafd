"""Reset schedules (reference/limitr.md §2.12): the reference table, month ends, leap days, Nth weekdays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from limitr_py.schedules import ScheduleError, parse_schedule

NOW = datetime(2026, 3, 15, 14, 30, tzinfo=UTC)  # a Sunday: the reference instant of Stof's own tests


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("schedule", "start"),
    [
        ("monthly:1", "2026-03-01"),
        ("monthly:20", "2026-02-20"),
        ("monthly:last", "2026-02-28"),
        ("weekly:mon", "2026-03-09"),
        ("weekly:sun", "2026-03-15"),
        ("nth_weekday:1:tue", "2026-03-03"),
        ("nth_weekday:2:fri", "2026-03-13"),
        ("nth_weekday:4:sun", "2026-02-22"),
        ("yearly:1-1", "2026-01-01"),
        ("yearly:7-1", "2025-07-01"),
        ("yearly:3-15", "2026-03-15"),
        ("yearly:2-29", "2026-02-28"),
        ("quarterly:1", "2026-01-01"),
        ("quarterly:20", "2026-01-20"),
    ],
)
def test_reference_table(schedule: str, start: str) -> None:
    assert parse_schedule(schedule).start_of_period(NOW) == d(start)


def test_quarterly_before_the_day_falls_back_a_quarter() -> None:
    assert parse_schedule("quarterly:20").start_of_period(d("2026-01-10")) == d("2025-10-20")


@pytest.mark.parametrize(
    ("schedule", "now", "start", "end"),
    [
        # a boundary instant belongs to the period it starts
        ("monthly:1", "2026-04-01T00:00:00", "2026-04-01", "2026-05-01"),
        ("monthly:1", "2026-03-31T23:59:59", "2026-03-01", "2026-04-01"),
        # day 31 clamps to short months: the period after Jan 31 starts Feb 28 (non-leap) / Feb 29 (leap)
        ("monthly:31", "2026-02-28T12:00:00", "2026-02-28", "2026-03-31"),
        ("monthly:31", "2028-02-29T12:00:00", "2028-02-29", "2028-03-31"),
        ("monthly:31", "2026-02-27T12:00:00", "2026-01-31", "2026-02-28"),
        ("monthly:last", "2028-02-29T00:00:00", "2028-02-29", "2028-03-31"),
        ("monthly:last", "2028-02-28T23:00:00", "2028-01-31", "2028-02-29"),
        # Feb 29 schedules: 28th in common years, 29th in leap years
        ("yearly:2-29", "2028-03-01", "2028-02-29", "2029-02-28"),
        ("yearly:2-29", "2027-02-28T01:00:00", "2027-02-28", "2028-02-29"),
        # a fifth Tuesday exists only in some months: months without one are skipped
        ("nth_weekday:5:tue", "2026-03-15", "2025-12-30", "2026-03-31"),
        ("nth_weekday:1:mon", "2026-06-01T00:00:00", "2026-06-01", "2026-07-06"),
        ("weekly:mon", "2026-03-16T00:00:00", "2026-03-16", "2026-03-23"),
        ("weekly:mon", "2026-03-15T23:59:59", "2026-03-09", "2026-03-16"),
        ("quarterly:31", "2026-05-01", "2026-04-30", "2026-07-31"),
        ("cron:0 0 * * 1", "2026-03-15T14:30:00", "2026-03-09", "2026-03-16"),
        ("cron:30 9 1 * *", "2026-03-01T09:30:00", "2026-03-01T09:30:00", "2026-04-01T09:30:00"),
    ],
)
def test_boundaries(schedule: str, now: str, start: str, end: str) -> None:
    sch = parse_schedule(schedule)
    assert sch.start_of_period(d(now)) == d(start)
    assert sch.next_period_start(d(now)) == d(end)


def test_named_zone_boundaries_fall_at_local_midnight() -> None:
    sch = parse_schedule("monthly:1@Europe/Paris")
    # Paris is UTC+1 in winter: local midnight of March 1 is 23:00 UTC on Feb 28
    assert sch.start_of_period(NOW) == d("2026-02-28T23:00:00")
    # and UTC+2 in summer (DST started March 29)
    assert sch.next_period_start(NOW) == d("2026-03-31T22:00:00")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Monthly:01", "monthly:1"),
        ("weekly:Monday", "weekly:mon"),
        ("cron:0  0 * * 1", "cron:0 0 * * 1"),
        ("nth_weekday:2:FRI", "nth_weekday:2:fri"),
    ],
)
def test_spellings_are_normalised(text: str, canonical: str) -> None:
    assert parse_schedule(text).text == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "monthly:0",
        "monthly:32",
        "weekly:funday",
        "nth_weekday:6:mon",
        "yearly:2-30",
        "yearly:13-1",
        "quarterly:0",
        "cron:* *",
        "cron:61 * * * *",
        "daily",
        "",
        "monthly:1@Nowhere/City",
    ],
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)
