"""KerongLockBank: the LockBank (and PresenceBank) over one KR-CU RS-485 line, boards 0..15."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from firmware_bridge.bank import (
    BoardInfo,
    BoardUnavailable,
    ChannelRef,
    DoorState,
    FoundBoard,
    Presence,
    Units,
    UnknownChannel,
)
from firmware_bridge.kerong import codec
from firmware_bridge.kerong.bus import KerongBus
from firmware_bridge.kerong.probe import PROFILE, scan_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KerongBoardSpec:
    """One KR-CU board: address `unit` (0..15, its DIP switch) on bus `bus`, locks 0..channels-1.

    The board times its own unlock pulse (set with the vendor's tool); the
    kiosk cannot set or read it over this protocol.
    """

    bus: str
    unit: int
    channels: int = 16
    #: IR sensors fitted (the board's `ir_sensors`): their bits are the compartments' presence.
    #: False: the bits mean nothing (a board reads 0 on an unwired input), presence is None.
    ir_sensors: bool = False


class KerongLockBank:
    """Locks = the board's lock outputs; door = the lock's hook switch (closed = shut);
    presence = the board's IR sensor of the compartment. One status request per board reads
    both."""

    def __init__(self, bus: KerongBus, boards: Iterable[KerongBoardSpec]) -> None:
        self.bus = bus
        self._boards: dict[int, KerongBoardSpec] = {}
        for spec in boards:
            where = f"bus {spec.bus!r} board {spec.unit}"
            if spec.bus != bus.name:
                raise ValueError(f"{where}: no kerong-cu bus named {spec.bus!r}")
            if spec.unit in self._boards:
                raise ValueError(f"{where}: unit {spec.unit} is used twice on the bus")
            if not 0 <= spec.unit <= codec.MAX_BOARD:
                raise ValueError(f"{where}: a Kerong board address is 0..15, got {spec.unit}")
            if not 1 <= spec.channels <= codec.MAX_LOCKS:
                raise ValueError(f"{where}: a kerong-cu board has 1..16 locks, got {spec.channels}")
            self._boards[spec.unit] = spec
        if not self._boards:
            raise ValueError(f"kerong-cu bus {bus.name!r} has no board")
        self._presence: Presence = {}
        self._pulses: dict[int, int] = {}
        self._started = False

    async def start(self) -> None:
        """Open the port and read every board once; BoardUnavailable if none answers."""
        if self._started:
            return
        await self.bus.connect()
        silent: list[BoardUnavailable] = []
        for unit in sorted(self._boards):
            try:
                await self.bus.status(unit)
            except BoardUnavailable as exc:
                silent.append(exc)
        if len(silent) == len(self._boards):
            await self.bus.close()
            units = ", ".join(map(str, sorted(self._boards)))
            raise BoardUnavailable(
                f"bus {self.bus.name!r} ({self.bus.settings.device}): no Kerong board answered "
                f"at address {units}",
                fix=silent[0].fix,
            )
        self._started = True

    async def close(self) -> None:
        """Release the port (the board switches its outputs off itself). Idempotent."""
        self._started = False
        await self.bus.close()

    async def unlock(self, ref: ChannelRef) -> None:
        """Send the unlock, then read the board's status: returns once the board answered."""
        spec = self._boards.get(ref.unit) if ref.bus == self.bus.name else None
        if spec is None or not 0 <= ref.channel < spec.channels:
            known = ", ".join(f"{self.bus.name}/{u}" for u in sorted(self._boards))
            raise UnknownChannel(
                f"{ref} is not a lock of a configured Kerong board",
                fix=f"configured boards (bus/unit): {known}",
            )
        if not self._started:
            raise BoardUnavailable("the Kerong lock bank is not started", fix="call start()")
        await self.bus.unlock(ref.unit, ref.channel)
        # No unlock reply is agreed on by the sources: a status reply proves the board heard.
        self._note(spec, await self.bus.status(ref.unit))
        self._pulses[ref.unit] = self._pulses.get(ref.unit, 0) + 1

    async def read_doors(self, units: Units | None = None) -> dict[ChannelRef, DoorState]:
        """Hook switches of every board (or those in `units`); a silent board reads UNKNOWN."""
        if not self._started:
            raise BoardUnavailable("the Kerong lock bank is not started", fix="call start()")
        states: dict[ChannelRef, DoorState] = {}
        for unit, spec in sorted(self._boards.items()):
            if units is not None and (self.bus.name, unit) not in units:
                continue
            try:
                status = await self.bus.status(unit)
            except BoardUnavailable as exc:
                log.debug("%s", exc)
                for ref in self._refs(spec):
                    states[ref] = DoorState.UNKNOWN
                    self._presence[ref] = None
                continue
            states.update(self._note(spec, status))
        return states

    def _refs(self, spec: KerongBoardSpec) -> list[ChannelRef]:
        return [ChannelRef(spec.bus, spec.unit, ch) for ch in range(spec.channels)]

    def _note(self, spec: KerongBoardSpec, status: codec.Status) -> dict[ChannelRef, DoorState]:
        """Door states of one reading; its IR bits become the board's presence."""
        doors: dict[ChannelRef, DoorState] = {}
        for ref in self._refs(spec):
            doors[ref] = DoorState.SHUT if status.closed(ref.channel) else DoorState.OPEN
            self._presence[ref] = status.occupied(ref.channel) if spec.ir_sensors else None
        return doors

    def presence(self) -> Presence:
        return dict(self._presence)

    async def scan(self, bus: str, units: Sequence[int], timeout_s: float) -> list[FoundBoard]:
        """Every board address 0..15 of the line asked its status (reads only).

        `units` is for Modbus buses (1..247): a KR-CU line has 16 addresses and
        all of them are asked, between the daemon's door polls (one request at
        a time on the line).
        """
        if bus != self.bus.name:
            raise UnknownChannel(f"no kerong-cu bus named {bus!r}")
        if not self._started:
            raise BoardUnavailable("the Kerong lock bank is not started", fix="call start()")
        return await scan_line(self.bus, timeout_s, self._boards)

    async def commission_open(self, ref: ChannelRef, profile: str) -> int:
        """One unlock frame (0x31) to lock `ref.channel` of board `ref.unit`, configured or
        not, then its status (the board heard); the board's lock count (16: a KR-CU16).

        A configured lock goes through `unlock`. The board times its own pulse,
        so there is no pulse length to write or cap.
        """
        self._commissionable(ref, profile)
        spec = self._boards.get(ref.unit)
        if spec is not None and ref.channel < spec.channels:
            await self.unlock(ref)
            return spec.channels
        await self.bus.unlock(ref.unit, ref.channel)
        await self.bus.status(ref.unit)  # BoardSilent: nothing proves the board heard
        self._pulses[ref.unit] = self._pulses.get(ref.unit, 0) + 1
        return codec.MAX_LOCKS

    async def commission_door(self, ref: ChannelRef, profile: str) -> DoorState:
        """That lock's hook switch from one status reply (0x30); UNKNOWN if none came."""
        self._commissionable(ref, profile)
        try:
            status = await self.bus.status(ref.unit)
        except BoardUnavailable as exc:  # a failed read is an unknown door, never a guess
            log.debug("%s", exc)
            return DoorState.UNKNOWN
        return DoorState.SHUT if status.closed(ref.channel) else DoorState.OPEN

    def _commissionable(self, ref: ChannelRef, profile: str) -> None:
        where = f"bus {ref.bus!r} board {ref.unit}"
        if ref.bus != self.bus.name:
            raise UnknownChannel(f"no kerong-cu bus named {ref.bus!r}")
        if profile != PROFILE:
            raise UnknownChannel(
                f"{where} is on a kerong-cu bus, not a {profile} board",
                fix=f"map it with profile {PROFILE}",
            )
        if not 0 <= ref.unit <= codec.MAX_BOARD:
            raise UnknownChannel(
                f"{where}: a Kerong board address is 0..{codec.MAX_BOARD}",
                fix="give the address the board's DIP switch is set to",
            )
        if not 0 <= ref.channel < codec.MAX_LOCKS:
            raise UnknownChannel(
                f"{where} has locks 0..{codec.MAX_LOCKS - 1}, not {ref.channel}",
                fix="give a channel the board has",
            )
        if not self._started:
            raise BoardUnavailable("the Kerong lock bank is not started", fix="call start()")

    def describe(self) -> list[BoardInfo]:
        infos = []
        for unit, spec in sorted(self._boards.items()):
            health = self.bus.health(unit)
            counters = {**health.counters(), "pulses": self._pulses.get(unit, 0)}
            infos.append(
                BoardInfo(
                    self.bus.name,
                    unit,
                    PROFILE,
                    spec.channels,
                    online=health.online is not False,
                    counters=counters,
                    presence_sensors=spec.channels if spec.ir_sensors else 0,
                )
            )
        return infos
