"""Board profiles as pure codecs: which Modbus request does what on a board, and what a reply means.

No I/O and no pymodbus here: a profile turns "unlock channel 3" into plain
request data (function code, address, value) and turns reply bits and
registers into door states, so every rule of a register map is tested with
no bus at all. `firmware_bridge.modbus.bus` sends the requests.

Two profiles:

* `KioskV1Profile`: the lock board of docs/contracts/register-map.md (maps v1
  and v2; v2 adds parcel-presence sensors at discrete inputs 1000 + ch).
  The board times the pulse itself from holding register 0 (ms), so an
  unlock is a plain FC05 coil write of 0xFF00.
* `WaveshareRelayDProfile`: Waveshare's "Modbus RTU Relay (D)", 8 relays and
  8 digital inputs. Its "flash on" command is an FC05 write to 0x0200 + ch
  whose value field is the on-time in 100 ms units (not 0xFF00/0x0000): the
  relay switches off by itself when that time is up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from firmware_bridge.bank import DoorState
from firmware_bridge.modbus.errors import WrongRegisterMap

FC_READ_COILS = 1
FC_READ_DISCRETE_INPUTS = 2
FC_READ_HOLDING_REGISTERS = 3
FC_READ_INPUT_REGISTERS = 4
FC_WRITE_SINGLE_COIL = 5
FC_WRITE_SINGLE_REGISTER = 6

#: The FC05 value fields the Modbus spec defines for "on" and "off".
COIL_ON = 0xFF00
COIL_OFF = 0x0000


@dataclass(frozen=True)
class ReadBits:
    """FC01 (coils) or FC02 (discrete inputs): `count` bits from `address`."""

    function: int
    address: int
    count: int


@dataclass(frozen=True)
class ReadRegisters:
    """FC03 (holding) or FC04 (input registers): `count` 16-bit words from `address`."""

    function: int
    address: int
    count: int


@dataclass(frozen=True)
class WriteCoil:
    """FC05 with a raw 16-bit value field; the board echoes address and value back."""

    function: ClassVar[int] = FC_WRITE_SINGLE_COIL
    address: int
    value: int


@dataclass(frozen=True)
class WriteRegister:
    """FC06: one holding register; the board echoes address and value back."""

    function: ClassVar[int] = FC_WRITE_SINGLE_REGISTER
    address: int
    value: int


Request = ReadBits | ReadRegisters | WriteCoil | WriteRegister


class BoardProfile(Protocol):
    """What the bank needs to know about one kind of board."""

    name: str
    max_channels: int

    def effective_pulse_ms(self, pulse_ms: int, max_pulse_ms: int) -> int:
        """The on-time the board will really give; ValueError if the cap cannot be kept."""
        ...

    def identify(self) -> ReadRegisters | None:
        """The request that proves the board speaks this map; None if it has none."""
        ...

    def check_identity(self, registers: Sequence[int], channels: int, where: str = "") -> int:
        """The board's channel count from the `identify` reply; WrongRegisterMap if unfit."""
        ...

    def configure(self, pulse_ms: int) -> tuple[Request, ...]:
        """Writes to make once the board is identified (and again after it was offline)."""
        ...

    def read_settings(self) -> ReadRegisters | None:
        """The request that reads back what `configure` wrote; None if nothing is kept."""
        ...

    def settings_hold(self, registers: Sequence[int], pulse_ms: int) -> bool:
        """Whether the `read_settings` reply still says what `configure(pulse_ms)` wrote."""
        ...

    def unlock(self, channel: int, pulse_ms: int) -> WriteCoil:
        """The single write that energises `channel`'s lock for one pulse."""
        ...

    def read_outputs(self, channels: int) -> ReadBits:
        """Read back every lock output (to switch off any found on at start)."""
        ...

    def read_output(self, channel: int) -> ReadBits:
        """Read back one lock output: on while its pulse runs (did an unlock land?)."""
        ...

    def output_off(self, channel: int) -> WriteCoil:
        """Switch one lock output off now."""
        ...

    def read_doors(self, channels: int) -> ReadBits:
        """One request for every door input of the board."""
        ...

    def decode_doors(
        self, bits: Sequence[bool], channels: int, where: str = ""
    ) -> dict[int, DoorState]:
        """Door state by channel from the `read_doors` reply bits."""
        ...

    def presence_count(self, identity: Sequence[int]) -> ReadRegisters | None:
        """The request for the board's presence-sensor count, given its `identify` reply;
        None if its map has no presence sensors."""
        ...

    def check_presence(self, registers: Sequence[int], identity: Sequence[int], where: str) -> int:
        """The presence-sensor count P from the `presence_count` reply; WrongRegisterMap if
        P is neither 0 nor the board's channel count."""
        ...

    def read_presence(self, channels: int) -> ReadBits:
        """One request for every presence input of the board (only when P > 0)."""
        ...

    def decode_presence(self, bits: Sequence[bool], channels: int, where: str = "") -> list[bool]:
        """Presence by channel (True = something inside) from the `read_presence` reply."""
        ...


def _check_pulse(name: str, pulse_ms: int, max_pulse_ms: int) -> None:
    if max_pulse_ms <= 0:
        raise ValueError(f"{name}: max_pulse_ms must be > 0, got {max_pulse_ms}")
    if not 0 < pulse_ms <= max_pulse_ms:
        raise ValueError(
            f"{name}: pulse_ms must be > 0 and <= max_pulse_ms ({max_pulse_ms}), got {pulse_ms}"
        )


def _decode_bits(
    bits: Sequence[bool], channels: int, open_level: bool, where: str
) -> dict[int, DoorState]:
    """Bit ch of an FC02 reply is door ch; bits past `channels` (byte padding) are ignored."""
    if len(bits) < channels:
        raise WrongRegisterMap(
            f"{where}door inputs reply has {len(bits)} bits, expected {channels}",
            fix="check the board's `channels` and `profile` in the config",
        )
    return {
        ch: DoorState.OPEN if bool(bits[ch]) == open_level else DoorState.SHUT
        for ch in range(channels)
    }


class _CoilsAndInputs:
    """What both boards share: lock outputs are coils 0..N-1, door inputs discrete inputs."""

    def read_outputs(self, channels: int) -> ReadBits:
        return ReadBits(FC_READ_COILS, 0, channels)

    def read_output(self, channel: int) -> ReadBits:
        return ReadBits(FC_READ_COILS, channel, 1)

    def output_off(self, channel: int) -> WriteCoil:
        return WriteCoil(channel, COIL_OFF)

    def read_doors(self, channels: int) -> ReadBits:
        return ReadBits(FC_READ_DISCRETE_INPUTS, 0, channels)


@dataclass(frozen=True)
class KioskV1Profile(_CoilsAndInputs):
    """Register map v1 (docs/contracts/register-map.md).

    coil ch (FC01/FC05): 1 = energise lock ch for the pulse time; the board clears it.
    discrete input ch (FC02): 1 = door open.
    holding register 0 (FC03/FC06): pulse length, ms.
    input registers 0, 1 (FC04): map version (1 or 2), channel count.
    map v2 only: input register 2 (FC04) = presence sensors P (0 or N);
    discrete input 1000 + ch (FC02): 1 = something in compartment ch.
    """

    name: ClassVar[str] = "kiosk-v1"
    max_channels: ClassVar[int] = 64
    map_version: ClassVar[int] = 1
    #: Every map version this profile drives: v2 is v1 plus presence sensors.
    map_versions: ClassVar[tuple[int, ...]] = (1, 2)
    pulse_register: ClassVar[int] = 0
    #: Input register 2 (map v2): the number of presence sensors, 0 or N.
    presence_count_register: ClassVar[int] = 2
    #: Discrete input 1000 + ch (map v2): 1 = something in compartment ch.
    presence_base: ClassVar[int] = 1000

    def effective_pulse_ms(self, pulse_ms: int, max_pulse_ms: int) -> int:
        """The board times the pulse to the millisecond: what is asked is what is given."""
        _check_pulse(self.name, pulse_ms, max_pulse_ms)
        if pulse_ms > 0xFFFF:
            raise ValueError(f"{self.name}: pulse_ms must fit a 16-bit register, got {pulse_ms}")
        return pulse_ms

    def identify(self) -> ReadRegisters:
        return ReadRegisters(FC_READ_INPUT_REGISTERS, 0, 2)

    def check_identity(self, registers: Sequence[int], channels: int, where: str = "") -> int:
        """Register 0 must be map version 1 or 2; register 1 (channels) must cover the config."""
        if len(registers) < 2:
            raise WrongRegisterMap(
                f"{where}identity reply has {len(registers)} registers, expected 2",
                fix="check that the board runs kiosk-v1 lock firmware (`profile`)",
            )
        version, count = int(registers[0]), int(registers[1])
        if version not in self.map_versions:
            raise WrongRegisterMap(
                f"{where}wrong register-map version {version}: this kiosk speaks "
                f"versions {' and '.join(map(str, self.map_versions))} (input register 0)",
                fix="flash the board with register-map v1 or v2 firmware, or set the board's "
                "`profile` to the board it really is",
            )
        if count < channels:
            raise WrongRegisterMap(
                f"{where}board has {count} channels (input register 1), config asks for {channels}",
                fix="lower the board's `channels` in the config, or fit the right board",
            )
        return count

    def configure(self, pulse_ms: int) -> tuple[Request, ...]:
        return (WriteRegister(self.pulse_register, pulse_ms),)

    def read_settings(self) -> ReadRegisters:
        """Holding register 0: a board that restarted reads its default (500 ms) again."""
        return ReadRegisters(FC_READ_HOLDING_REGISTERS, self.pulse_register, 1)

    def settings_hold(self, registers: Sequence[int], pulse_ms: int) -> bool:
        return len(registers) >= 1 and int(registers[0]) == pulse_ms

    def unlock(self, channel: int, pulse_ms: int) -> WriteCoil:
        """Coil ch = 1; the pulse length was written to holding register 0 by `configure`."""
        _ = pulse_ms
        return WriteCoil(channel, COIL_ON)

    def decode_doors(
        self, bits: Sequence[bool], channels: int, where: str = ""
    ) -> dict[int, DoorState]:
        return _decode_bits(bits, channels, True, where)

    def presence_count(self, identity: Sequence[int]) -> ReadRegisters | None:
        """Map v2: input register 2; a v1 board has no register 2 and is never asked."""
        if len(identity) < 1 or int(identity[0]) < 2:
            return None
        return ReadRegisters(FC_READ_INPUT_REGISTERS, self.presence_count_register, 1)

    def check_presence(self, registers: Sequence[int], identity: Sequence[int], where: str) -> int:
        count = int(identity[1]) if len(identity) >= 2 else 0
        if len(registers) < 1 or int(registers[0]) not in (0, count):
            found = int(registers[0]) if registers else "nothing"
            raise WrongRegisterMap(
                f"{where}presence sensors (input register 2) read {found}: a v2 board "
                f"has 0 or one per channel ({count})",
                fix="check the board's firmware (register map v2)",
            )
        return int(registers[0])

    def read_presence(self, channels: int) -> ReadBits:
        return ReadBits(FC_READ_DISCRETE_INPUTS, self.presence_base, channels)

    def decode_presence(self, bits: Sequence[bool], channels: int, where: str = "") -> list[bool]:
        if len(bits) < channels:
            raise WrongRegisterMap(
                f"{where}presence inputs reply has {len(bits)} bits, expected {channels}",
                fix="check the board's `channels` and firmware (register map v2)",
            )
        return [bool(bits[ch]) for ch in range(channels)]


@dataclass(frozen=True)
class WaveshareRelayDProfile(_CoilsAndInputs):
    """Waveshare Modbus RTU Relay (D): relays are coils 0..7, inputs are discrete inputs 0..7.

    Unlock = "flash on": FC05 at 0x0200 + ch, value = on-time in 100 ms units.
    The board has no identity registers and no pulse register.
    `open_level`: the input level that means "door open" (True: the input is
    active while the door is open). Use False for a contact that closes when
    the door shuts.
    """

    name: ClassVar[str] = "waveshare-relay-d"
    max_channels: ClassVar[int] = 8
    flash_on_base: ClassVar[int] = 0x0200
    unit_ms: ClassVar[int] = 100
    open_level: bool = True

    def flash_units(self, pulse_ms: int) -> int:
        """ceil(pulse_ms / 100): never shorter than asked."""
        return max(1, math.ceil(pulse_ms / self.unit_ms))

    def effective_pulse_ms(self, pulse_ms: int, max_pulse_ms: int) -> int:
        """pulse_ms rounded up to 100 ms, unless that breaks max_pulse_ms: then rounded down.

        ValueError if max_pulse_ms < 100 ms (the board cannot time a shorter pulse).
        """
        _check_pulse(self.name, pulse_ms, max_pulse_ms)
        units = self.flash_units(pulse_ms)
        if units * self.unit_ms > max_pulse_ms:
            units = max_pulse_ms // self.unit_ms
        if units < 1:
            raise ValueError(
                f"{self.name}: max_pulse_ms {max_pulse_ms} is below the board's "
                f"{self.unit_ms} ms step; raise it to at least {self.unit_ms}"
            )
        return units * self.unit_ms

    def identify(self) -> None:
        return None

    def check_identity(self, registers: Sequence[int], channels: int, where: str = "") -> int:
        """Nothing to check: the board has no identity registers (`identify` is None)."""
        _ = registers, channels, where
        return self.max_channels

    def configure(self, pulse_ms: int) -> tuple[Request, ...]:
        _ = pulse_ms
        return ()

    def read_settings(self) -> None:
        """Nothing to read back: every flash-on write carries its own on-time."""
        return None

    def settings_hold(self, registers: Sequence[int], pulse_ms: int) -> bool:
        _ = registers, pulse_ms
        return True

    def unlock(self, channel: int, pulse_ms: int) -> WriteCoil:
        """Flash on: the board switches the relay off after ceil(pulse_ms / 100) x 100 ms."""
        return WriteCoil(self.flash_on_base + channel, self.flash_units(pulse_ms))

    def decode_doors(
        self, bits: Sequence[bool], channels: int, where: str = ""
    ) -> dict[int, DoorState]:
        return _decode_bits(bits, channels, self.open_level, where)

    def presence_count(self, identity: Sequence[int]) -> None:
        """No presence sensors: its eight inputs are the doors'."""
        _ = identity
        return None

    def check_presence(self, registers: Sequence[int], identity: Sequence[int], where: str) -> int:
        _ = registers, identity, where
        return 0

    def read_presence(self, channels: int) -> ReadBits:
        raise WrongRegisterMap(f"{self.name}: a board without presence sensors")

    def decode_presence(self, bits: Sequence[bool], channels: int, where: str = "") -> list[bool]:
        raise WrongRegisterMap(f"{where}{self.name}: a board without presence sensors")


PROFILES: dict[str, type[KioskV1Profile] | type[WaveshareRelayDProfile]] = {
    KioskV1Profile.name: KioskV1Profile,
    WaveshareRelayDProfile.name: WaveshareRelayDProfile,
}


def profile_for(name: str, sensor_open_high: bool | None = None) -> BoardProfile:
    """The profile named in a board's config (`kiosk-v1`, `waveshare-relay-d`).

    `sensor_open_high` (None: the profile's own) sets a waveshare-relay-d
    board's door polarity; only that profile takes it (kiosk-v1 fixes 1 = open).
    """
    profile = PROFILES.get(name)
    if profile is None:
        raise ValueError(
            f"unknown Modbus board profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        )
    if sensor_open_high is None:
        return profile()
    if profile is not WaveshareRelayDProfile:
        raise ValueError(f"a {name} board takes no sensor_open_high (its map fixes 1 = open)")
    return WaveshareRelayDProfile(open_level=sensor_open_high)
