"""Door physics of one simulated locker channel: lock pulse, spring, person, sensor faults.

Pure: no I/O, no asyncio, no wall clock. Every method takes `now` (seconds on
any monotonic scale) and the state is settled lazily up to that instant, so a
test drives it with a fake clock and the serving loop needs no timer task.

A channel's story: an unlock pulse energises the lock for `pulse_s`; a NORMAL
door springs open `open_delay_s` after the pulse starts (a JAMMED one never
does); with `auto_close_s` set, the "person" shuts it again that long after it
opened. Script actions (`open`, `close`, `force_open`) move the door at once.
A stuck sensor reports a fixed value whatever the door does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DoorMode(enum.Enum):
    """How a door answers an unlock pulse."""

    NORMAL = "normal"  # springs open after open_delay_s
    JAMMED = "jammed"  # the latch releases, the door does not move


@dataclass(frozen=True)
class Pulse:
    """One lock energisation: which board and channel, when (clock s) and for how long (ms)."""

    unit: int
    channel: int
    t: float
    ms: int


@dataclass(frozen=True)
class DoorEvent:
    """One door movement as the physics saw it; `kind` is opened, closed or forced."""

    unit: int
    channel: int
    t: float
    kind: str


class Door:
    """One lock + door + sensor. Times in seconds on the caller's clock."""

    def __init__(
        self,
        unit: int,
        channel: int,
        *,
        open_delay_s: float = 0.05,
        auto_close_s: float | None = None,
    ) -> None:
        if open_delay_s < 0:
            raise ValueError(f"open_delay_s must be >= 0, got {open_delay_s}")
        if auto_close_s is not None and auto_close_s <= 0:
            raise ValueError(f"auto_close_s must be > 0 or None, got {auto_close_s}")
        self.unit = unit
        self.channel = channel
        self.open_delay_s = open_delay_s
        self.auto_close_s = auto_close_s
        self.mode = DoorMode.NORMAL
        #: None: the sensor tells the truth; True/False: it reads that, whatever the door does.
        self.stuck: bool | None = None
        self.events: list[DoorEvent] = []
        self._open = False
        self._energised_until: float | None = None
        self._opens_at: float | None = None
        self._closes_at: float | None = None

    # -- time ---------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Apply every scheduled change due at or before `now`, each at its own time."""
        if self._energised_until is not None and now >= self._energised_until:
            self._energised_until = None
        if self._opens_at is not None and now >= self._opens_at:
            when, self._opens_at = self._opens_at, None
            if self.mode is DoorMode.NORMAL and not self._open:
                self._move(True, when, "opened")
                if self.auto_close_s is not None:
                    self._closes_at = when + self.auto_close_s
        if self._closes_at is not None and now >= self._closes_at:
            when, self._closes_at = self._closes_at, None
            if self._open:
                self._move(False, when, "closed")

    def _move(self, opened: bool, when: float, kind: str) -> None:
        self._open = opened
        self.events.append(DoorEvent(self.unit, self.channel, when, kind))

    # -- the lock -----------------------------------------------------------------------

    def pulse(self, now: float, pulse_s: float) -> None:
        """Energise the lock for `pulse_s` from `now` (a new pulse restarts the timer)."""
        self.settle(now)
        self._energised_until = now + pulse_s
        if not self._open and self._opens_at is None:
            self._opens_at = now + self.open_delay_s
        self.settle(now)

    def release(self, now: float) -> None:
        """De-energise the lock at once (coil written 0). A door already springing stays so."""
        self.settle(now)
        self._energised_until = None

    def energised(self, now: float) -> bool:
        self.settle(now)
        return self._energised_until is not None

    # -- the door and its sensor ---------------------------------------------------------

    def is_open(self, now: float) -> bool:
        """The physical door, whatever the sensor says."""
        self.settle(now)
        return self._open

    def sensor(self, now: float) -> bool:
        """What the door sensor reports: True = open."""
        self.settle(now)
        return self._open if self.stuck is None else self.stuck

    def open(self, now: float, kind: str = "opened") -> None:
        """A person pulls the door open (no auto-close: the script shuts it)."""
        self.settle(now)
        self._opens_at = None
        if not self._open:
            self._move(True, now, kind)

    def force_open(self, now: float) -> None:
        """The door is opened with no unlock (a crowbar, a broken latch)."""
        self.open(now, kind="forced")

    def close(self, now: float) -> None:
        """A person shuts the door; any pending spring-open or auto-close is cancelled."""
        self.settle(now)
        self._opens_at = None
        self._closes_at = None
        if self._open:
            self._move(False, now, "closed")
