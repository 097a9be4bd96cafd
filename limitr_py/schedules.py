"""Reset schedules (reference/limitr.md §2.12, SPEC §4): parsing and period boundaries, pure functions of time.

Forms: `monthly:N` (1–31; clamped to short months), `monthly:last`, `weekly:<dow>`, `nth_weekday:N:<dow>` (1–5;
months without an Nth occurrence are skipped), `yearly:M-D` (Feb 29 → Feb 28 in common years), `quarterly:D`
(day D of Jan/Apr/Jul/Oct), and `cron:<expression>` (croniter, minute resolution). Boundaries fall at 00:00 UTC,
or at local midnight when the schedule ends in `@<IANA zone>` (e.g. `monthly:1@Europe/Paris`).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LONG_DAYS = {calendar.day_name[i].lower(): i for i in range(7)}


class ScheduleError(ValueError):
    """A schedule string that cannot be parsed; the message says what is wrong and what is accepted."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule. `text` is the canonical spelling (what the fingerprint and writers use)."""

    kind: str  # monthly | weekly | nth_weekday | yearly | quarterly | cron
    text: str
    day: int = 0  # monthly/quarterly/yearly day of month; -1 = last
    weekday: int = 0  # 0 = Monday
    nth: int = 0
    month: int = 0
    cron: str = ""
    zone: str = "UTC"

    def start_of_period(self, now: datetime) -> datetime:
        """The start of the period that contains `now` (the most recent boundary ≤ now)."""
        if self.kind == "cron":
            return self._cron_prev(now)
        return _start_for_day(self, now.astimezone(self._tz()).date())

    def next_period_start(self, now: datetime) -> datetime:
        """The first boundary strictly after `now`: when the current period ends."""
        if self.kind == "cron":
            return self._cron_next(now)
        local = now.astimezone(self._tz()).date()
        best: datetime | None = None
        for ahead in range(0, 12 * 8 + 1):
            for candidate in self._candidates(local, -ahead):
                if candidate is not None:
                    boundary = self._midnight(candidate)
                    if boundary > now and (best is None or boundary < best):
                        best = boundary
            if best is not None and ahead >= 1:
                return best
        raise ScheduleError(f"schedule `{self.text}` has no boundary after {now.isoformat()}")

    # -- internals ------------------------------------------------------------------------------------------

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self._tz()).astimezone(UTC)

    def _candidates(self, today: date, back: int) -> list[date | None]:
        """Boundary dates in the unit `back` steps before today's (months, weeks, quarters or years)."""
        if self.kind == "weekly":
            monday = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
            return [monday + timedelta(days=self.weekday)]
        if self.kind == "yearly":
            year = today.year - back
            return [date(year, self.month, min(self.day, calendar.monthrange(year, self.month)[1]))]
        if self.kind == "quarterly":
            first_month = (today.month - 1) // 3 * 3 + 1
            y, m = _add_months(today.year, first_month, -3 * back)
            return [date(y, m, min(self.day, calendar.monthrange(y, m)[1]))]
        y, m = _add_months(today.year, today.month, -back)
        last = calendar.monthrange(y, m)[1]
        if self.kind == "monthly":
            return [date(y, m, last if self.day == -1 else min(self.day, last))]
        # nth_weekday
        first = date(y, m, 1)
        offset = (self.weekday - first.weekday()) % 7
        day = 1 + offset + 7 * (self.nth - 1)
        return [date(y, m, day) if day <= last else None]

    def _cron_prev(self, now: datetime) -> datetime:
        local = now.astimezone(self._tz())
        if (
            croniter.match(self.cron, local.replace(second=0, microsecond=0))
            and local.second == 0
            and local.microsecond == 0
        ):
            return now
        prev: datetime = croniter(self.cron, local).get_prev(datetime)
        return prev.astimezone(UTC)

    def _cron_next(self, now: datetime) -> datetime:
        nxt: datetime = croniter(self.cron, now.astimezone(self._tz())).get_next(datetime)
        return nxt.astimezone(UTC)


@lru_cache(maxsize=4096)
def _start_for_day(schedule: Schedule, today: date) -> datetime:
    """Start of the calendar period containing the local day `today` (boundaries fall at local midnight, so
    every instant of a day has the same answer: memoized per day, it costs one lookup on the hot path)."""
    for back in range(0, 12 * 8 + 1):
        for candidate in schedule._candidates(today, back):
            if candidate is not None and candidate <= today:
                return schedule._midnight(candidate)
    raise ScheduleError(f"schedule `{schedule.text}` has no boundary before {today.isoformat()}")


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _weekday(text: str, schedule: str) -> int:
    key = text.strip().lower()
    if key in DAYS:
        return DAYS.index(key)
    if key in _LONG_DAYS:
        return _LONG_DAYS[key]
    raise ScheduleError(f"`{text}` in `{schedule}` is not a day of the week; use mon, tue, wed, thu, fri, sat or sun")


def _int_in(text: str, low: int, high: int, what: str, schedule: str) -> int:
    if not re.fullmatch(r"\d{1,2}", text.strip()):
        raise ScheduleError(f"`{text}` in `{schedule}` is not a {what} ({low}–{high})")
    value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"`{text}` in `{schedule}` is not a {what} ({low}–{high})")
    return value


@lru_cache(maxsize=1024)
def parse_schedule(text: str) -> Schedule:
    """Parse a schedule string; raises ScheduleError with a one-line message. Schedules are immutable: cached."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("a schedule must be text such as `monthly:1` or `weekly:mon`")
    raw = text.strip()
    zone = "UTC"
    body = raw
    if "@" in raw:
        body, zone = raw.rsplit("@", 1)
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone `{zone}` in `{raw}`") from None
    suffix = "" if zone == "UTC" else f"@{zone}"
    kind, _, rest = body.partition(":")
    kind = kind.strip().lower()
    parts = [p.strip() for p in rest.split(":")] if rest else []
    if kind == "monthly" and len(parts) == 1:
        day = -1 if parts[0].lower() == "last" else _int_in(parts[0], 1, 31, "day of the month", raw)
        return Schedule("monthly", f"monthly:{'last' if day == -1 else day}{suffix}", day=day, zone=zone)
    if kind == "weekly" and len(parts) == 1:
        wd = _weekday(parts[0], raw)
        return Schedule("weekly", f"weekly:{DAYS[wd]}{suffix}", weekday=wd, zone=zone)
    if kind == "nth_weekday" and len(parts) == 2:
        nth = _int_in(parts[0], 1, 5, "week number", raw)
        wd = _weekday(parts[1], raw)
        return Schedule("nth_weekday", f"nth_weekday:{nth}:{DAYS[wd]}{suffix}", weekday=wd, nth=nth, zone=zone)
    if kind == "yearly" and len(parts) == 1 and "-" in parts[0]:
        m_text, d_text = parts[0].split("-", 1)
        month = _int_in(m_text, 1, 12, "month", raw)
        day = _int_in(d_text, 1, calendar.monthrange(2024, month)[1], "day of that month", raw)
        return Schedule("yearly", f"yearly:{month}-{day}{suffix}", day=day, month=month, zone=zone)
    if kind == "quarterly" and len(parts) == 1:
        day = _int_in(parts[0], 1, 31, "day of the month", raw)
        return Schedule("quarterly", f"quarterly:{day}{suffix}", day=day, zone=zone)
    if kind == "cron" and rest.strip():
        expression = " ".join(rest.split())
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise ScheduleError(f"`{expression}` is not a 5-field cron expression (minute hour day month weekday)")
        return Schedule("cron", f"cron:{expression}{suffix}", cron=expression, zone=zone)
    raise ScheduleError(
        f"`{raw}` is not a schedule; use monthly:N, monthly:last, weekly:<dow>, "
        "nth_weekday:N:<dow>, yearly:M-D, quarterly:D or cron:<expression>"
    )
