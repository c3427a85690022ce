"""ModbusLockBank: the LockBank over one or more Modbus buses, several lock boards (units) each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import firmware_bridge.defaults as board_defaults
from firmware_bridge.bank import (
    BoardInfo,
    BoardUnavailable,
    BridgeError,
    ChannelRef,
    DoorState,
    Presence,
    Units,
    UnknownChannel,
)
from firmware_bridge.modbus.bus import ModbusBus
from firmware_bridge.modbus.commission import Commissioner
from firmware_bridge.modbus.errors import BoardNotAnswering
from firmware_bridge.modbus.profiles import BoardProfile, profile_for

log = logging.getLogger(__name__)

#: Seconds between read-backs of a board's settings (one short request per board).
SETTINGS_CHECK_S = 5.0

MIN_UNIT, MAX_UNIT = 1, 247


@dataclass(frozen=True)
class BoardSpec:
    """One lock board as configured: Modbus unit `unit` on bus `bus`, channels 0..channels-1.

    pulse_ms / max_pulse_ms: the unlock pulse and its cap (ms); the board is
    never told to energise a lock for longer than max_pulse_ms. The defaults are
    firmware_bridge.defaults, which the config's [[board]] takes too.
    """

    bus: str
    unit: int
    profile: str = board_defaults.PROFILE
    channels: int = board_defaults.CHANNELS
    pulse_ms: int = board_defaults.PULSE_MS
    max_pulse_ms: int = board_defaults.MAX_PULSE_MS
    #: Input level of an open door, for profiles that let it be set (waveshare-relay-d).
    sensor_open_high: bool | None = None
    #: kerong-cu boards only (firmware_bridge.kerong); a Modbus board says its own sensors.
    ir_sensors: bool = False


@dataclass
class _Board:
    spec: BoardSpec
    profile: BoardProfile
    bus: ModbusBus
    pulse_ms: int
    needs_setup: bool = True
    read_failing: bool = False
    pulses: int = 0
    door_read_failures: int = 0
    refs: list[ChannelRef] = field(default_factory=list)
    pulse_ends: dict[int, float] = field(default_factory=dict)  # channel -> monotonic end
    check_at: float = 0.0  # monotonic time of the next read-back of the board's settings
    rewrites: int = 0  # settings found lost (a restart) and written again
    settings_failures: int = 0  # read-backs that failed, or a rewrite that did not hold
    settings_failing: bool = False  # logged once until a read-back holds again
    presence_sensors: int = 0  # map v2: 0 or one per channel (input register 2)
    presence: dict[ChannelRef, bool | None] = field(default_factory=dict)  # last reading
    presence_read_failures: int = 0
    presence_failing: bool = False  # logged once until the presence inputs read again

    @property
    def where(self) -> str:
        return f"bus {self.spec.bus!r} board {self.spec.unit}"


class ModbusLockBank:
    """LockBank on Modbus lock boards (profiles `kiosk-v1`, `waveshare-relay-d`).

    * `start` opens every bus, then identifies and sets up each board: checks
      its register map, writes the pulse length (kiosk-v1), and switches off
      any lock output found on. A board that is silent at start is logged
      offline and set up as soon as it answers (at its next unlock); start
      fails only if no board at all answers on a bus (wiring, baud rate), or
      a board answers with the wrong map or too few channels.
    * `read_doors` sends ONE read request (FC02) per board per call; a board
      that does not answer reports UNKNOWN for each of its doors, never a guess.
      A map-v2 board with presence sensors gets one more FC02 (discrete inputs
      1000..1000+N-1) right after its doors; `presence` hands back what it read
      (None where a board has no sensors or did not answer).
    * `unlock` returns once the board acknowledged the write; only
      `read_doors` says the door opened. A board that was offline is set up
      again first, since it may have lost power (and its pulse length).
    * A board can also restart between two polls (a brown-out as a solenoid
      fires) and answer the next one as if nothing happened, its pulse length
      back at the default. So `read_doors` reads a board's settings back
      (kiosk-v1: holding register 0, one FC03) every `check_s` seconds and
      right after each of its pulses ends, and writes them again if they were
      lost; `describe` counts that as `settings_rewritten`.
    """

    def __init__(
        self,
        buses: Iterable[ModbusBus],
        boards: Iterable[BoardSpec],
        check_s: float = SETTINGS_CHECK_S,
    ) -> None:
        """Check the layout; opens nothing until `start`.

        ValueError on two buses with one name, a board on an unknown bus, a
        unit id used twice on a bus or outside 1..247, a channel count the
        profile cannot have, or a pulse the profile cannot keep under its cap.
        """
        self._buses: dict[str, ModbusBus] = {}
        for bus in buses:
            if bus.name in self._buses:
                raise ValueError(f"two Modbus buses are named {bus.name!r}")
            self._buses[bus.name] = bus
        self._boards: dict[tuple[str, int], _Board] = {}
        for spec in boards:
            self._boards[(spec.bus, spec.unit)] = self._check(spec)
        for name in self._buses:
            if not any(b.spec.bus == name for b in self._boards.values()):
                raise ValueError(f"Modbus bus {name!r} has no board")
        self._check_s = check_s
        self._started = False
        specs = {key: board.spec for key, board in self._boards.items()}
        self._commissioner = Commissioner(self._buses, specs, self.unlock, lambda: self._started)

    def _check(self, spec: BoardSpec) -> _Board:
        where = f"bus {spec.bus!r} board {spec.unit}"
        bus = self._buses.get(spec.bus)
        if bus is None:
            raise ValueError(f"{where}: no Modbus bus named {spec.bus!r}")
        if (spec.bus, spec.unit) in self._boards:
            raise ValueError(f"{where}: unit {spec.unit} is used twice on the bus")
        if not MIN_UNIT <= spec.unit <= MAX_UNIT:
            raise ValueError(f"{where}: unit must be {MIN_UNIT}..{MAX_UNIT}, got {spec.unit}")
        try:
            profile = profile_for(spec.profile, spec.sensor_open_high)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if not 1 <= spec.channels <= profile.max_channels:
            raise ValueError(
                f"{where}: a {profile.name} board has 1..{profile.max_channels} channels, "
                f"got {spec.channels}"
            )
        try:
            pulse_ms = profile.effective_pulse_ms(spec.pulse_ms, spec.max_pulse_ms)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        board = _Board(spec, profile, bus, pulse_ms)
        board.refs = [ChannelRef(spec.bus, spec.unit, ch) for ch in range(spec.channels)]
        return board

    async def start(self) -> None:
        """Open every bus, identify and set up every board; a second call does nothing."""
        if self._started:
            return
        try:
            for bus in self._buses.values():
                await bus.connect()
            for name in self._buses:
                await self._start_bus(name)
        except BaseException:
            await self._close_buses()
            raise
        self._started = True

    async def _start_bus(self, name: str) -> None:
        boards = [b for b in self._boards.values() if b.spec.bus == name]
        silent: list[BoardNotAnswering] = []
        for board in sorted(boards, key=lambda b: b.spec.unit):
            try:
                await self._setup(board)
            except BoardNotAnswering as exc:
                silent.append(exc)
        if len(silent) == len(boards):
            units = ", ".join(str(b.spec.unit) for b in boards)
            where = self._buses[name].settings.where
            plural = "s" if len(boards) > 1 else ""
            raise BoardUnavailable(
                f"bus {name!r} ({where}): no board answered at unit{plural} {units}",
                fix=silent[0].fix,
            )

    async def _setup(self, board: _Board) -> None:
        """Identify, write the pulse length, switch off any output left on."""
        spec, profile, bus = board.spec, board.profile, board.bus
        ident = profile.identify()
        if ident is not None:
            reply = await bus.execute(spec.unit, ident, "identify")
            profile.check_identity(reply.registers, spec.channels, where=f"{board.where}: ")
            count = profile.presence_count(reply.registers)
            if count is not None:
                sensors = await bus.execute(spec.unit, count, "read presence sensor count")
                board.presence_sensors = profile.check_presence(
                    sensors.registers, reply.registers, where=f"{board.where}: "
                )
        for request in profile.configure(board.pulse_ms):
            await bus.execute(spec.unit, request, "write pulse length")
        outputs = await bus.execute(spec.unit, profile.read_outputs(spec.channels), "read outputs")
        for channel, on in enumerate(outputs.bits[: spec.channels]):
            if on:
                log.warning("%s: lock output %d was on; switching it off", board.where, channel)
                await bus.execute(spec.unit, profile.output_off(channel), "output off")
        board.needs_setup = False
        board.check_at = asyncio.get_running_loop().time() + self._check_s

    async def close(self) -> None:
        """Switch off any output still on (boards that answer), release every bus. Idempotent."""
        if not self._started:
            await self._close_buses()
            return
        self._started = False
        for board in self._boards.values():
            if board.bus.health(board.spec.unit).online is not True:
                continue
            try:
                spec = board.spec
                reply = await board.bus.execute(
                    spec.unit, board.profile.read_outputs(spec.channels), "read outputs"
                )
                for channel, on in enumerate(reply.bits[: spec.channels]):
                    if on:
                        await board.bus.execute(
                            spec.unit, board.profile.output_off(channel), "output off"
                        )
            except BridgeError as exc:
                log.warning("%s: cannot check its outputs at close: %s", board.where, exc)
        await self._close_buses()

    async def _close_buses(self) -> None:
        for bus in self._buses.values():
            await bus.close()

    async def unlock(self, ref: ChannelRef) -> None:
        """One pulse of `ref`'s lock; returns once the board acknowledged the write."""
        board = self._boards.get((ref.bus, ref.unit))
        if board is None or not 0 <= ref.channel < board.spec.channels:
            known = ", ".join(f"{b}/{u}" for b, u in sorted(self._boards))
            raise UnknownChannel(
                f"{ref} is not a channel of a configured Modbus board",
                fix=f"configured boards (bus/unit): {known}",
            )
        if not self._started:
            raise BoardUnavailable("the Modbus lock bank is not started", fix="call start()")
        # A pulse still running is never extended (a kiosk-v1 board restarts its
        # timer on a second write, which would energise the lock past its cap):
        # wait for it to end, let the coil rest as long, then pulse anew.
        loop = asyncio.get_running_loop()
        pulse_s = board.pulse_ms / 1000
        end = board.pulse_ends.get(ref.channel, 0.0)
        if loop.time() < end:
            await asyncio.sleep(end - loop.time() + min(pulse_s, 0.1))
        try:
            if board.needs_setup:
                await self._setup(board)
            request = board.profile.unlock(ref.channel, board.pulse_ms)
            landed = board.profile.read_output(ref.channel)
            board.pulse_ends[ref.channel] = loop.time() + pulse_s
            await board.bus.execute(ref.unit, request, f"unlock {ref}", landed=landed)
        except BoardUnavailable:
            self._note_offline(board)
            raise
        board.pulses += 1
        # A solenoid's inrush is what most often resets a board: look once its pulse is
        # over (not before: a read-back during a pulse would say nothing of its effects).
        board.check_at = board.pulse_ends[ref.channel]

    async def read_doors(self, units: Units | None = None) -> dict[ChannelRef, DoorState]:
        """One reading of every door (or of the boards in `units`): one FC02 per board,
        the buses read side by side."""
        if not self._started:
            raise BoardUnavailable("the Modbus lock bank is not started", fix="call start()")
        per_bus = await asyncio.gather(*(self._read_bus(name, units) for name in self._buses))
        doors: dict[ChannelRef, DoorState] = {}
        for states in per_bus:
            doors.update(states)
        return doors

    async def _read_bus(self, name: str, units: Units | None) -> dict[ChannelRef, DoorState]:
        doors: dict[ChannelRef, DoorState] = {}
        may_check = True  # one settings read-back per bus per reading: no poll waits on many
        for board in sorted(self._boards.values(), key=lambda b: b.spec.unit):
            wanted = units is None or (board.spec.bus, board.spec.unit) in units
            if board.spec.bus == name and wanted:
                states, answered = await self._read_board(board)
                doors.update(states)
                if answered and may_check:
                    may_check = not await self._check_settings(board)
        return doors

    async def _read_board(self, board: _Board) -> tuple[dict[ChannelRef, DoorState], bool]:
        """The board's doors, and whether it answered with them."""
        spec, profile = board.spec, board.profile
        try:
            reply = await board.bus.execute(
                spec.unit, profile.read_doors(spec.channels), "read doors"
            )
            states = profile.decode_doors(reply.bits, spec.channels, where=f"{board.where}: ")
        except BoardUnavailable:
            board.door_read_failures += 1
            board.presence = {}  # unread with its doors: None, never the last reading
            self._note_offline(board)  # the bus logs the outage, and the recovery, once
            return dict.fromkeys(board.refs, DoorState.UNKNOWN), False
        except BridgeError as exc:  # answered, but refused or malformed: log once
            board.door_read_failures += 1
            if not board.read_failing:
                log.warning("%s: door inputs cannot be read: %s", board.where, exc)
            board.read_failing = True
            board.presence = {}
            return dict.fromkeys(board.refs, DoorState.UNKNOWN), False
        if board.read_failing:
            board.read_failing = False
            log.info("%s: door inputs read again", board.where)
        if board.presence_sensors:
            await self._read_presence(board)
        return {ref: states[ref.channel] for ref in board.refs}, True

    async def _read_presence(self, board: _Board) -> None:
        """The board's presence inputs (map v2), one FC02; None for each if it fails."""
        spec, profile = board.spec, board.profile
        try:
            reply = await board.bus.execute(
                spec.unit, profile.read_presence(spec.channels), "read presence"
            )
            found = profile.decode_presence(reply.bits, spec.channels, where=f"{board.where}: ")
        except BridgeError as exc:
            board.presence_read_failures += 1
            if not board.presence_failing:
                log.warning("%s: presence inputs cannot be read: %s", board.where, exc)
            board.presence_failing = True
            board.presence = dict.fromkeys(board.refs)
            return
        if board.presence_failing:
            board.presence_failing = False
            log.info("%s: presence inputs read again", board.where)
        board.presence = {ref: found[ref.channel] for ref in board.refs}

    def presence(self) -> Presence:
        """Every channel's presence at its board's last reading; None where no sensor is fitted."""
        found: Presence = {}
        for board in self._boards.values():
            for ref in board.refs:
                found[ref] = board.presence.get(ref) if board.presence_sensors else None
        return found

    async def _check_settings(self, board: _Board) -> bool:
        """Read the board's settings back when due, write them again if it lost them;
        True if it asked the board anything.

        Never while one of its pulses runs. A restart found is logged each time
        (each is a fault to look into); a board that cannot be read back, or does
        not keep what is written, is logged once and tried again every `check_s`.
        """
        request = board.profile.read_settings()
        now = asyncio.get_running_loop().time()
        if request is None or board.needs_setup or now < board.check_at:
            return False
        if any(end > now for end in board.pulse_ends.values()):
            return False  # due, and looked at once the pulse is over
        board.check_at = now + self._check_s
        unit, profile = board.spec.unit, board.profile
        try:
            reply = await board.bus.execute(unit, request, "read settings")
            if profile.settings_hold(reply.registers, board.pulse_ms):
                if board.settings_failing:
                    board.settings_failing = False
                    log.info("%s: its pulse length reads right again", board.where)
                return True
            found = "/".join(str(r) for r in reply.registers) or "nothing"
            for write in profile.configure(board.pulse_ms):
                await board.bus.execute(unit, write, "write pulse length")
            again = await board.bus.execute(unit, request, "read settings")
        except BoardUnavailable:
            self._note_offline(board)  # set up in full before its next unlock
            return True
        except BridgeError as exc:
            self._settings_failed(board, f"its settings cannot be checked: {exc}")
            return True
        if not profile.settings_hold(again.registers, board.pulse_ms):
            self._settings_failed(
                board,
                f"it does not keep its pulse length: {board.pulse_ms} ms written, "
                f"{'/'.join(str(r) for r in again.registers) or 'nothing'} read back "
                "(check `profile` and the board's firmware)",
            )
            return True
        board.rewrites += 1
        board.settings_failing = False
        log.warning(
            "%s: its pulse length read %s, not the configured %d ms: the board "
            "restarted; written again",
            board.where,
            found,
            board.pulse_ms,
        )
        return True

    def _settings_failed(self, board: _Board, message: str) -> None:
        board.settings_failures += 1
        if not board.settings_failing:
            board.settings_failing = True
            log.warning("%s: %s", board.where, message)

    def _note_offline(self, board: _Board) -> None:
        """An offline board may come back power-cycled: set it up again before its next unlock."""
        if board.bus.health(board.spec.unit).online is False:
            board.needs_setup = True

    def commissioning(self) -> Commissioner:
        """Scans of this bank's buses and pulses of channels the config lacks (kiosk hardware)."""
        return self._commissioner

    def describe(self) -> list[BoardInfo]:
        """Every board with its bus counters, unlock pulses and failed door reads."""
        infos = []
        for (bus, unit), board in sorted(self._boards.items()):
            health = board.bus.health(unit)
            counters = {
                **health.counters(),
                "pulses": board.pulses,
                "door_read_failures": board.door_read_failures,
                "settings_rewritten": board.rewrites,
                "settings_failures": board.settings_failures,
            }
            if board.presence_sensors:
                counters["presence_read_failures"] = board.presence_read_failures
            infos.append(
                BoardInfo(
                    bus,
                    unit,
                    board.profile.name,
                    board.spec.channels,
                    online=health.online is True,
                    counters=counters,
                    presence_sensors=board.presence_sensors,
                )
            )
        return infos
