"""One door-physics interface for both test backends: GPIO mock pins or a simulated Modbus bus.

The flow tests move doors through `bank.doors` and never ask which backend
is behind it: `open(label)` (someone pulls the door open, by force if no
unlock came), `close(label)`, `is_open(label)` (the physical door, whatever
its sensor says), `jammed` (a set of labels whose doors stay shut through
any pulse) and `pulses[label]` (lock energisations so far).

`GpioDoorPhysics` (the product's GpioDoorSim) has that shape already;
`SimDoorPhysics` gives it to a SimBus by mapping each label to the
(unit, channel) of a SimBoard. The SimBoard stays the one source of truth:
`jammed` and `pulses` are views of its doors and its pulse record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableSet
from typing import Protocol

from firmware_bridge.simboard import DoorMode, SimBoard, SimBus


class DoorPhysics(Protocol):
    """What a test may do to and ask of the doors of a bank."""

    @property
    def jammed(self) -> MutableSet[str]: ...

    @property
    def pulses(self) -> Mapping[str, int]: ...

    def open(self, label: str) -> None: ...

    def close(self, label: str) -> None: ...

    def is_open(self, label: str) -> bool: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class SimDoorPhysics:
    """The doors of a SimBus as the tests see them; `where` maps label -> (unit, channel)."""

    def __init__(self, sim: SimBus, where: Mapping[str, tuple[int, int]]) -> None:
        self.sim = sim
        self.where = dict(where)
        self._labels = {spot: label for label, spot in self.where.items()}
        self.jammed = JammedDoors(self)

    def board(self, label: str) -> tuple[SimBoard, int]:
        """The SimBoard behind `label` and the channel of its door."""
        unit, channel = self.where[label]
        return self.sim[unit], channel

    def open(self, label: str) -> None:
        """The door is pulled open with no unlock (the sim records it as forced)."""
        board, channel = self.board(label)
        board.force_open(channel)

    def close(self, label: str) -> None:
        board, channel = self.board(label)
        board.close(channel)

    def is_open(self, label: str) -> bool:
        board, channel = self.board(label)
        return board.is_open(channel)

    def stuck_sensor(self, label: str, value: bool | None) -> None:
        """The door's sensor reads `value` (True = open) whatever the door does; None mends it."""
        board, channel = self.board(label)
        board.stuck_sensor(channel, value)

    @property
    def pulses(self) -> dict[str, int]:
        """Unlock pulses per label, counted from the boards' own pulse records."""
        counts = dict.fromkeys(self.where, 0)
        for pulse in self.sim.pulses:
            label = self._labels.get((pulse.unit, pulse.channel))
            if label is not None:
                counts[label] += 1
        return counts

    def start(self) -> None:
        """Nothing to claim: the boards' doors start shut and keep their state across restarts."""

    async def stop(self) -> None:
        """Nothing runs: the door physics settles lazily whenever a register is read."""


class JammedDoors(MutableSet[str]):
    """The labels whose doors are jammed; add / discard jam and free them on the SimBoard."""

    def __init__(self, doors: SimDoorPhysics) -> None:
        self._doors = doors

    def __contains__(self, label: object) -> bool:
        if not isinstance(label, str) or label not in self._doors.where:
            return False
        board, channel = self._doors.board(label)
        return board.door(channel).mode is DoorMode.JAMMED

    def __iter__(self) -> Iterator[str]:
        return iter([label for label in self._doors.where if label in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def add(self, label: str) -> None:
        board, channel = self._doors.board(label)
        board.jam(channel, True)

    def discard(self, label: str) -> None:
        if label in self._doors.where:
            board, channel = self._doors.board(label)
            board.jam(channel, False)

    def __repr__(self) -> str:
        return f"JammedDoors({set(self)!r})"
