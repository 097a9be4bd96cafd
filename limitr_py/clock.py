"""Time for the engine. The only module that reads the system clock; everything else is handed a `Clock`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from limitr_py.errors import InvalidArgumentError


@runtime_checkable
class Clock(Protocol):
    """Anything with `now() -> datetime` (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def as_utc(when: datetime, what: str = "time") -> datetime:
    """`when` in UTC; naive datetimes are refused because guessing their zone would move a billing period."""
    if not isinstance(when, datetime):
        raise InvalidArgumentError(f"{what} must be a datetime, got `{type(when).__name__}`")
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be timezone-aware, got the naive `{when.isoformat()}`")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise InvalidArgumentError(f"{what} `{when.isoformat()}` is out of range") from None


class ManualClock:
    """A clock that moves only when told to: for tests, simulations and replays. Thread-safe; never goes back."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` or by `timedelta(**kwargs)` (e.g. `advance(days=3)`); returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if not isinstance(step, timedelta) or step < timedelta(0):
            raise InvalidArgumentError(f"a clock only moves forward, got `{step}`")
        with self._lock:
            self._now = self._now + step
            return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to `when` (not earlier than now)."""
        target = as_utc(when, "when")
        with self._lock:
            if target < self._now:
                raise InvalidArgumentError(
                    f"a clock never goes back: `{target.isoformat()}` is before `{self._now.isoformat()}`"
                )
            self._now = target
            return self._now
