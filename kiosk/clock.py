"""Time for the application: wall clock (UTC, for day deadlines) and monotonic (for holds)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def to_text(moment: datetime) -> str:
    """RFC 3339 UTC with fixed-width microseconds, so text order is time order in SQLite."""
    return moment.astimezone(UTC).strftime(_FORMAT)


def from_text(text: str) -> datetime:
    """Parse RFC 3339 (any offset, 'Z' allowed) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    return moment.astimezone(UTC)
