"""A read-only look at the Modbus lock boards of one bus: identify them and read their doors.

For `kiosk doctor` while the daemon is stopped. It never writes to a board:
no pulse length, no output switched, no lock pulsed. Only FC04 (the
identity registers, where the profile has them) and FC02 (door inputs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from firmware_bridge.bank import BridgeError, DoorState
from firmware_bridge.modbus.bank import BoardSpec
from firmware_bridge.modbus.bus import BusSettings, ModbusBus
from firmware_bridge.modbus.profiles import profile_for


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
