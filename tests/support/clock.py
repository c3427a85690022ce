"""Clocks a test can move: FakeClock (moves only when told), or wall and monotonic together."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A wall clock and a monotonic clock that move only when something moves them.

    * `advance(**delta)` moves the wall clock alone: a day passing as the
      ledger sees it, or NTP stepping the clock. Monotonic timers do not see it.
    * `elapse(seconds)` is time passing: wall and monotonic together, at
      once, with no sleep. Tests use it to let a hold, a door left open or a
      session's idle time run out.
    * `sleep(seconds)` is the service's own wait between two door readings
      (`ServiceContext.sleep`): the monotonic clock moves by exactly that
      much, so a door-open deadline falls due after that many polls however
      slow the machine is. The pause itself is real (a short one): the
      simulated doors it waits for move in real time.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **kwargs: float) -> datetime:
        self.current += timedelta(**kwargs)
        return self.current

    def elapse(self, seconds: float) -> None:
        self.mono += seconds
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.mono += seconds
        await asyncio.sleep(seconds)


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
