"""Simulated doors for a GPIO bank on gpiozero's MockFactory: a pulsed lock springs its door open.

Product code: `kiosk demo` runs a whole bank on it, and tests script its
faults. It watches the relay pins the real GpioLockBank drives and drives the
reed-switch pins the way a door and a person would: a pulsed door springs
open (unless jammed), and with `auto_close_s` set, the person shuts it again
after that many seconds. Sensor polarity: high = open (pull-up wiring).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from gpiozero.pins.mock import MockFactory

#: How often the simulator looks at the relays (s). A pulse is never missed however long the
#: look takes (it reads the MockPin's record of changes), so this is only how late a door
#: springs open; a quicker look keeps the process busy, and Textual's Pilot waits for an idle
#: process after every key (up to a second each).
TICK_S = 0.02


class GpioDoorSim:
    def __init__(
        self,
        factory: MockFactory,
        pins: dict[str, tuple[int, int]],
        auto_close_s: float = 0.0,
        tick_s: float = TICK_S,
    ) -> None:
        self.factory = factory
        self.pins = pins  # label -> (relay_pin, sensor_pin)
        self.auto_close_s = auto_close_s
        self.tick_s = tick_s
        self.jammed: set[str] = set()
        self.pulses: dict[str, int] = dict.fromkeys(pins, 0)
        # Per relay: the MockPin's list of state changes and how far it was read.
        self._read: dict[str, tuple[list[Any], int]] = {}
        self._close_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def _pin(self, number: int) -> Any:
        return self.factory.pin(number)

    def shut_all(self) -> None:
        for _, sensor in self.pins.values():
            self._pin(sensor).drive_low()

    def is_open(self, label: str) -> bool:
        return bool(self._pin(self.pins[label][1]).state)

    def open(self, label: str) -> None:
        """Someone pulls the door open (after an unlock, or by force)."""
        self._pin(self.pins[label][1]).drive_high()

    def close(self, label: str) -> None:
        self._close_at.pop(label, None)
        self._pin(self.pins[label][1]).drive_low()

    def _rising_edges(self, label: str, relay: int) -> int:
        """Pulses of `relay` since the last look, from the MockPin's record of its changes.

        gpiozero's own thread ends a pulse, so a pulse can begin and end
        between two looks of a busy loop; its record still has both edges.
        """
        states = self._pin(relay).states
        known, done = self._read.get(label, (None, 0))
        if known is not states:  # first look, or the record was cleared: start after its head
            done = 1
        self._read[label] = (states, len(states))
        return sum(1 for change in states[done:] if change.state)

    def tick(self, now: float = 0.0) -> None:
        """Look at the relays once: each pulse opens the door of a lock that is not jammed."""
        for label, (relay, _) in self.pins.items():
            for _ in range(self._rising_edges(label, relay)):
                self.pulses[label] += 1
                if label not in self.jammed:
                    self.open(label)
                    if self.auto_close_s > 0:
                        self._close_at[label] = now + self.auto_close_s
        for label, when in list(self._close_at.items()):
            if now >= when:
                self.close(label)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.tick(loop.time())
            await asyncio.sleep(self.tick_s)

    def start(self) -> None:
        """Shut every door and start watching the relays on the running loop.

        Call it after the bank has claimed its pins: claiming a sensor pin with
        its pull-up drives it high, which reads as an open door.
        """
        self.shut_all()
        for label, (relay, _) in self.pins.items():
            self._rising_edges(label, relay)  # what came before is not a pulse to answer
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
