"""The LockBank interface: the only things the application may ask of lock hardware.

Pure: no hardware library is imported here, so the kiosk's service layer can
depend on this module without pulling in pymodbus, pyserial or gpiozero.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, order=True)
class ChannelRef:
    """One lock + door-sensor pair: a channel of a board (unit) on a bus."""

    bus: str
    unit: int
    channel: int

    def __str__(self) -> str:
        return f"{self.bus}/{self.unit}/{self.channel}"


class DoorState(enum.Enum):
    """What a door sensor says. UNKNOWN is never guessed into OPEN or SHUT."""

    OPEN = "open"
    SHUT = "shut"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BoardInfo:
    """A board as the maintenance screen shows it."""

    bus: str
    unit: int
    kind: str
    channels: int
    online: bool = True
    counters: Mapping[str, int] = field(default_factory=dict)
    #: Parcel-presence sensors fitted: 0 (none) or one per channel (register map v2, gpio
    #: `presence_pins`).
    presence_sensors: int = 0


class BridgeError(Exception):
    """Base of every firmware_bridge error; `code` is stable, `fix` says what to do."""

    code = "bridge_error"

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.fix})" if self.fix else text


class UnknownChannel(BridgeError):
    """A channel that no configured board has."""

    code = "unknown_channel"


class BoardUnavailable(BridgeError):
    """A board that does not answer (cable, power, address)."""

    code = "board_unavailable"


#: (bus, unit) pairs: which boards a `read_doors` call should read.
Units = Collection[tuple[str, int]]


@runtime_checkable
class LockBank(Protocol):
    """Locks and door sensors of one bank.

    `unlock` returns once the board has acknowledged the pulse: it does NOT
    mean the door opened. Only `read_doors` says that (write, then verify).
    """

    async def start(self) -> None:
        """Claim the hardware with every output off."""

    async def close(self) -> None:
        """Every output off, hardware released. Safe to call twice."""

    async def unlock(self, ref: ChannelRef) -> None:
        """Energise one lock for the board's configured pulse (never longer than its cap)."""

    async def read_doors(self, units: Units | None = None) -> dict[ChannelRef, DoorState]:
        """One reading of every configured door sensor, or only of the boards in `units`.

        `units` is a set of (bus, unit) pairs: a flow waiting for one door reads
        that door's board alone, not the whole bank.
        """

    def describe(self) -> list[BoardInfo]:
        """The boards behind this bank, with their health counters."""


#: Parcel presence by channel: True = something in the compartment, False = empty,
#: None = no sensor fitted (or its board could not be read).
Presence = dict[ChannelRef, bool | None]


@runtime_checkable
class PresenceBank(Protocol):
    """A LockBank that may have parcel-presence sensors (register map v2, gpio presence_pins).

    Presence is read together with the doors: `read_doors` reads a board's
    presence inputs right after its door inputs, and `presence` hands back
    what that reading saw, so a flow that saw a door shut also knows whether
    the compartment held something at that moment, with no second poll.
    """

    def presence(self) -> Presence:
        """Every configured channel's presence at the last `read_doors` of its board."""
        ...


def last_presence(bank: object) -> Presence:
    """`bank.presence()`, or {} for a bank that has no presence sensors at all."""
    return bank.presence() if isinstance(bank, PresenceBank) else {}


@dataclass(frozen=True)
class FoundBoard:
    """A board that answered a scan (`kiosk hardware scan`), read-only.

    `profile` is "kiosk-v1" when it answered the identity registers with map
    v1 or v2, "kerong-cu" for a KR-CU board that answered its status command,
    else "" (it answered, but not with that map: `problem` says how).
    `map_version`, `channels` and `presence_sensors` are None where it could not
    tell (a KR-CU board has no register map: its map_version is None).
    """

    bus: str
    unit: int
    profile: str = ""
    map_version: int | None = None
    channels: int | None = None
    presence_sensors: int | None = None
    configured: bool = False
    problem: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "bus": self.bus,
            "unit": self.unit,
            "profile": self.profile or None,
            "map_version": self.map_version,
            "channels": self.channels,
            "presence_sensors": self.presence_sensors,
            "configured": self.configured,
            "problem": self.problem,
        }


@runtime_checkable
class ScanningBank(Protocol):
    """A LockBank whose bus can be scanned for boards, reads only (`kiosk hardware scan`)."""

    async def scan(self, bus: str, units: Sequence[int], timeout_s: float) -> list[FoundBoard]:
        """Ask each unit of `units` on `bus` who it is (reads only); the ones that answered."""
        ...


@runtime_checkable
class CommissioningBank(Protocol):
    """A LockBank whose bus can be scanned and whose new boards' channels can be pulsed.

    For commissioning a new bank (`kiosk hardware scan`, `kiosk hardware map`):
    the boards may not be in the config yet, but the bus is, and its one owner
    (the daemon) must be the one that talks on it.
    """

    async def scan(self, bus: str, units: Sequence[int], timeout_s: float) -> list[FoundBoard]:
        """Ask each unit of `units` on `bus` who it is (reads only); the ones that answered."""
        ...

    async def commission_open(self, ref: ChannelRef, profile: str) -> int:
        """One unlock pulse of `ref`, a channel the config may not have yet; the board's
        channel count. UnknownChannel where the board or channel does not exist."""
        ...

    async def commission_door(self, ref: ChannelRef, profile: str) -> DoorState:
        """One reading of `ref`'s door sensor (its board alone is read)."""
        ...


@runtime_checkable
class HasCommissioning(Protocol):
    """A LockBank that hands its commissioning to a helper object (ModbusLockBank)."""

    def commissioning(self) -> CommissioningBank: ...
