"""A read-only look at the Modbus lock boards of one bus: identify them, read their doors, scan.

For `kiosk doctor` while the daemon is stopped, and for `kiosk hardware scan`
(by the daemon on its own bus, or here on a bus opened for the scan). It never
writes to a board: no pulse length, no output switched, no lock pulsed. Only
FC04 (the identity registers, where the profile has them) and FC02 (door inputs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from firmware_bridge.bank import BridgeError, DoorState, FoundBoard
from firmware_bridge.modbus.bank import BoardSpec
from firmware_bridge.modbus.bus import BusSettings, ModbusBus
from firmware_bridge.modbus.errors import BoardRefused
from firmware_bridge.modbus.profiles import KioskV1Profile, profile_for

#: Default wait for one unit's answer during a scan (s): a kiosk-v1 board answers the
#: identity read in a few ms at 115200 baud; a silent unit costs this much.
SCAN_TIMEOUT_S = 0.04


@dataclass(frozen=True)
class BoardProbe:
    """What one board said. `channels` is its own count (None: its profile cannot tell)."""

    bus: str
    unit: int
    answered: bool
    channels: int | None = None
    doors: dict[int, DoorState] = field(default_factory=dict)
    problem: str = ""
    fix: str = ""


async def probe_bus(settings: BusSettings, specs: Iterable[BoardSpec]) -> list[BoardProbe]:
    """Open the bus, ask each board who it is and how its doors stand, close the bus.

    Raises BoardUnavailable (SerialPortMissing, SerialPermissionDenied,
    BusUnavailable) when the port or connection cannot be opened at all.
    """
    bus = ModbusBus(settings)
    await bus.connect()
    try:
        return [await _probe(bus, spec) for spec in sorted(specs, key=lambda s: s.unit)]
    finally:
        await bus.close()


async def _probe(bus: ModbusBus, spec: BoardSpec) -> BoardProbe:
    profile = profile_for(spec.profile, spec.sensor_open_high)
    where = f"bus {spec.bus!r} board {spec.unit}: "
    channels: int | None = None
    answered = False
    try:
        ident = profile.identify()
        if ident is not None:
            reply = await bus.execute(spec.unit, ident, "identify")
            answered = True
            channels = profile.check_identity(reply.registers, spec.channels, where=where)
        reply = await bus.execute(spec.unit, profile.read_doors(spec.channels), "read doors")
        answered = True
        doors = profile.decode_doors(reply.bits, spec.channels, where=where)
    except BridgeError as exc:
        answered = answered or bus.health(spec.unit).online is True
        return BoardProbe(spec.bus, spec.unit, answered, channels, {}, str(exc.args[0]), exc.fix)
    return BoardProbe(spec.bus, spec.unit, True, channels, dict(doors))


async def scan_units(
    bus: ModbusBus,
    units: Iterable[int],
    timeout_s: float = SCAN_TIMEOUT_S,
    configured: Iterable[int] = (),
) -> list[FoundBoard]:
    """Ask each unit for the kiosk-v1 identity registers (FC04 0..1, and 2 on map v2).

    One attempt per unit of at most `timeout_s`; the bus must be connected.
    Each read takes the bus's lock on its own, so a daemon's door polls go on
    between them. A unit that answers with a Modbus exception is listed with
    no profile (a board of another kind, e.g. waveshare-relay-d).
    """
    profile = KioskV1Profile()
    ident = profile.identify()
    known = set(configured)
    found = []
    for unit in units:
        try:
            reply = await bus.probe(unit, ident, timeout_s)
        except BoardRefused as exc:
            found.append(
                FoundBoard(
                    bus.name,
                    unit,
                    configured=unit in known,
                    problem=f"answers, but refuses the kiosk-v1 identity read (Modbus exception "
                    f"{exc.exception_code}): another kind of board; give its profile by hand",
                )
            )
            continue
        if reply is None:
            continue
        found.append(await _identified(bus, unit, reply.registers, timeout_s, unit in known))
    return found


async def _identified(
    bus: ModbusBus, unit: int, registers: tuple[int, ...], timeout_s: float, configured: bool
) -> FoundBoard:
    profile = KioskV1Profile()
    version, channels = int(registers[0]), int(registers[1])
    if version not in profile.map_versions:
        return FoundBoard(
            bus.name,
            unit,
            map_version=version,
            channels=channels,
            configured=configured,
            problem=f"register map version {version}: this kiosk speaks 1 and 2",
        )
    sensors: int | None = 0
    ask = profile.presence_count(registers)
    if ask is not None:
        try:
            reply = await bus.probe(unit, ask, timeout_s)
        except BoardRefused:
            reply = None
        sensors = int(reply.registers[0]) if reply is not None else None
    return FoundBoard(
        bus.name, unit, profile.name, version, channels, sensors, configured=configured
    )


async def scan_bus(
    settings: BusSettings,
    units: Iterable[int],
    timeout_s: float = SCAN_TIMEOUT_S,
    configured: Iterable[int] = (),
) -> list[FoundBoard]:
    """Open the bus (the daemon is stopped), `scan_units`, close it.

    Raises BoardUnavailable when the port or connection cannot be opened.
    """
    bus = ModbusBus(settings)
    await bus.connect()
    try:
        return await scan_units(bus, units, timeout_s, configured)
    finally:
        await bus.close()
