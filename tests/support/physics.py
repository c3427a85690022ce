"""Door physics for a GPIO bank on gpiozero's MockFactory: a pulsed lock springs its door open.

It watches the relay MockPins (the real pins the real GpioLockBank drives)
and drives the reed-switch MockPins the way a door would. A test scripts
faults: a jammed door never opens; a test closes doors itself.
"""

from __future__ import annotations

import asyncio
import contextlib

from gpiozero.pins.mock import MockFactory


class GpioDoorPhysics:
    def __init__(self, factory: MockFactory, pins: dict[str, tuple[int, int]]) -> None:
        self.factory = factory
        self.pins = pins  # label -> (relay_pin, sensor_pin)
        self.jammed: set[str] = set()
        self.pulses: dict[str, int] = dict.fromkeys(pins, 0)
        self._last: dict[str, bool] = dict.fromkeys(pins, False)
        self._task: asyncio.Task[None] | None = None

    def pin(self, number: int):  # type: ignore[no-untyped-def]
        return self.factory.pin(number)

    def shut_all(self) -> None:
        for _, sensor in self.pins.values():
            self.pin(sensor).drive_low()

    def is_open(self, label: str) -> bool:
        return bool(self.pin(self.pins[label][1]).state)

    def open(self, label: str) -> None:
        """Someone pulls the door open (after an unlock, or forced)."""
        self.pin(self.pins[label][1]).drive_high()

    def close(self, label: str) -> None:
        self.pin(self.pins[label][1]).drive_low()

    def _tick(self) -> None:
        for label, (relay, _) in self.pins.items():
            on = bool(self.pin(relay).state)
            if on and not self._last[label]:
                self.pulses[label] += 1
                if label not in self.jammed:
                    self.open(label)
            self._last[label] = on

    async def _run(self) -> None:
        while True:
            self._tick()
            await asyncio.sleep(0.002)

    def start(self) -> None:
        self.shut_all()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
