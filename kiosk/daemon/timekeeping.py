"""A wall clock that follows the system clock but never jumps with it.

Day deadlines (3-day pickup window, deliver-by) are wall-clock times, but a
Raspberry Pi without a battery-backed clock can boot in 1970 or in the past,
and a bad NTP step can throw the clock days ahead. Expiring every parcel (or
none) because of that is wrong, so:

* while the system clock agrees with monotonic progress (within `tolerance`),
  this clock IS the system clock (NTP slewing and small steps are followed);
* when it jumps, this clock keeps counting monotonic seconds from the last
  trusted reading, logs the jump once, and accepts the new system time only
  after it has held steady for `accept_after` (a real correction does; a
  glitch does not);
* it never goes back before the last trusted time saved in the ledger (a
  clock that booted in the past cannot make parcels young again), not at
  start and not later: a Pi offline with no battery-backed clock keeps its
  wrong boot time steady for hours, and that must not pass for a correction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from kiosk.clock import Clock

log = logging.getLogger(__name__)


class TrustedClock:
    def __init__(
        self,
        system: Clock,
        last_trusted: datetime | None = None,
        tolerance: timedelta = timedelta(minutes=2),
        accept_after: timedelta = timedelta(hours=1),
    ) -> None:
        self.system = system
        self.tolerance = tolerance
        self.accept_after = accept_after
        wall = system.now()
        self._floor = last_trusted
        self._anchor_wall = wall
        if last_trusted is not None and wall < last_trusted - tolerance:
            log.warning(
                "system clock %s is before the last trusted time %s; using the latter",
                wall.isoformat(),
                last_trusted.isoformat(),
            )
            self._anchor_wall = last_trusted
        self._anchor_mono = system.monotonic()
        self._jump_seen_at: float | None = None  # monotonic time the current offset appeared
        self._jump_offset: timedelta | None = None
        self._floor_logged = False
        self.jumps = 0

    def monotonic(self) -> float:
        return self.system.monotonic()

    def now(self) -> datetime:
        mono = self.system.monotonic()
        derived = self._anchor_wall + timedelta(seconds=mono - self._anchor_mono)
        wall = self.system.now()
        offset = wall - derived
        if abs(offset) <= self.tolerance:
            self._anchor(wall, mono)
            return wall
        if self._jump_offset is None or abs(offset - self._jump_offset) > self.tolerance:
            self._jump_offset, self._jump_seen_at = offset, mono
            self.jumps += 1
            log.warning("system clock jumped by %s; keeping time from the monotonic clock", offset)
            return derived
        assert self._jump_seen_at is not None
        if mono - self._jump_seen_at >= self.accept_after.total_seconds():
            if self._floor is not None and wall < self._floor - self.tolerance:
                if not self._floor_logged:
                    log.warning(
                        "system clock %s stays before the last trusted time %s; not accepting it",
                        wall.isoformat(),
                        self._floor.isoformat(),
                    )
                    self._floor_logged = True
                return derived
            log.warning(
                "system clock has held its new time for %s; accepting it", self.accept_after
            )
            self._anchor(wall, mono)
            return wall
        return derived

    def _anchor(self, wall: datetime, mono: float) -> None:
        self._anchor_wall, self._anchor_mono = wall, mono
        self._jump_offset = self._jump_seen_at = None
