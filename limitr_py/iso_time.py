"""ISO 8601 times typed by people (event files, the CLI, HTTP bodies): with a zone, `Z` accepted."""

from __future__ import annotations

from datetime import datetime


class NotATime(ValueError):
    """Not an ISO 8601 time (`no_zone`: a time, but without a zone). Callers word it for their users."""

    def __init__(self, no_zone: bool) -> None:
        super().__init__("needs a time zone (e.g. `Z`)" if no_zone else "must be an ISO 8601 time")
        self.no_zone = no_zone


def parse(text: str) -> datetime:
    """`2026-03-01T12:00:00Z` → an aware datetime; NotATime otherwise (a time without a zone is refused: it
    would be read in the server's zone)."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NotATime(False) from None
    if at.tzinfo is None:
        raise NotATime(True)
    return at
