"""Clocks a test can move: the wall clock alone (FakeClock), or wall and monotonic together."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()

    def advance(self, **kwargs: float) -> datetime:
        self.current += timedelta(**kwargs)
        return self.current


class SteppedClock:
    """A system clock: real time passing, plus `advance` steps (wall and monotonic together).

    What a daemon sees when days pass while it runs: its TrustedClock follows
    (the wall clock moves with the monotonic one), so day deadlines fall due.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._wall0 = start or datetime.now(UTC)
        self._mono0 = time.monotonic()
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.monotonic() - self._mono0)

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta).total_seconds()
