"""Commissioning on a ModbusLockBank's buses: scans, and pulses of channels it does not drive yet.

`kiosk hardware scan` (daemon running) reads each unit's identity through the
bank's own bus object (its lock, its frame gap). `kiosk hardware map` pulses
channels: a configured board's configured channel through the bank's own
`unlock`; any other (unit, channel) here. Each such opening identifies the board
first (a kiosk-v1 board must say map v1 or v2 and have the channel), writes
the pulse length (capped as any configured board's is), then sends the one
unlock write, with the same "did it land?" read-back before any re-send. A
pulse still running on that channel is never extended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from firmware_bridge.bank import (
    BoardUnavailable,
    BridgeError,
    ChannelRef,
    DoorState,
    FoundBoard,
    UnknownChannel,
)
from firmware_bridge.modbus.bus import ModbusBus
from firmware_bridge.modbus.profiles import PROFILES, profile_for

if TYPE_CHECKING:
    from firmware_bridge.modbus.bank import BoardSpec


class Commissioner:
    """One per ModbusLockBank; keeps pulse ends per channel, so openings never overlap."""

    def __init__(
        self,
        buses: Mapping[str, ModbusBus],
        specs: Mapping[tuple[str, int], BoardSpec],
        unlock: Callable[[ChannelRef], Awaitable[None]],
        started: Callable[[], bool],
    ) -> None:
        """`specs`: the configured boards; `unlock`, `started`: the bank's own."""
        self._buses = buses
        self._specs = specs
        self._unlock = unlock
        self._started = started
        self._pulse_ends: dict[ChannelRef, float] = {}

    def _bus(self, name: str) -> ModbusBus:
        if not self._started():
            raise BoardUnavailable("the Modbus lock bank is not started", fix="call start()")
        bus = self._buses.get(name)
        if bus is None:
            raise UnknownChannel(f"no Modbus bus named {name!r}")
        return bus

    async def scan(self, bus: str, units: Sequence[int], timeout_s: float) -> list[FoundBoard]:
        """Read-only: each unit's identity (firmware_bridge.modbus.probe.scan_units)."""
        from firmware_bridge.modbus.probe import scan_units

        mine = [unit for name, unit in self._specs if name == bus]
        return await scan_units(self._bus(bus), units, timeout_s, mine)

    async def commission_open(self, ref: ChannelRef, profile: str) -> int:
        """Pulse `ref` once; the board's channel count. A configured channel goes through
        the bank's `unlock`; any other is identified first, its pulse length capped."""
        _modbus_profile(ref, profile)
        spec = self._specs.get((ref.bus, ref.unit))
        if spec is not None and ref.channel < spec.channels:
            await self._unlock(ref)
            return spec.channels
        bus = self._bus(ref.bus)
        if spec is not None:
            return await self.open(bus, ref, spec.profile, spec.pulse_ms, spec.max_pulse_ms)
        from firmware_bridge.modbus.bank import BoardSpec

        new = BoardSpec(ref.bus, ref.unit, profile)
        return await self.open(bus, ref, profile, new.pulse_ms, new.max_pulse_ms)

    async def commission_door(self, ref: ChannelRef, profile: str) -> DoorState:
        _modbus_profile(ref, profile)
        spec = self._specs.get((ref.bus, ref.unit))
        return await self.door(self._bus(ref.bus), ref, spec.profile if spec else profile)

    async def channels(self, bus: ModbusBus, ref: ChannelRef, profile_name: str) -> int:
        """The board's own channel count (its profile's maximum if it cannot tell);
        UnknownChannel if `ref.channel` is not one of them."""
        profile = profile_for(profile_name)
        where = f"bus {ref.bus!r} board {ref.unit}: "
        count = profile.max_channels
        ident = profile.identify()
        if ident is not None:
            reply = await bus.execute(ref.unit, ident, "identify")
            count = profile.check_identity(reply.registers, 1, where=where)
        if not 0 <= ref.channel < count:
            raise UnknownChannel(
                f"{where}has channels 0..{count - 1}, not {ref.channel}",
                fix="give a channel the board has",
            )
        return count

    async def open(
        self, bus: ModbusBus, ref: ChannelRef, profile_name: str, pulse_ms: int, max_pulse_ms: int
    ) -> int:
        """Identify, set the pulse, pulse `ref` once; the board's channel count."""
        count = await self.channels(bus, ref, profile_name)
        profile = profile_for(profile_name)
        pulse = profile.effective_pulse_ms(pulse_ms, max_pulse_ms)
        for request in profile.configure(pulse):
            await bus.execute(ref.unit, request, "write pulse length")
        loop = asyncio.get_running_loop()
        end = self._pulse_ends.get(ref, 0.0)
        if loop.time() < end:
            await asyncio.sleep(end - loop.time() + min(pulse / 1000, 0.1))
        self._pulse_ends[ref] = loop.time() + pulse / 1000
        await bus.execute(
            ref.unit,
            profile.unlock(ref.channel, pulse),
            f"unlock {ref}",
            landed=profile.read_output(ref.channel),
        )
        return count

    async def door(self, bus: ModbusBus, ref: ChannelRef, profile_name: str) -> DoorState:
        """One FC02 of the board's inputs 0..channel; UNKNOWN if it does not answer."""
        profile = profile_for(profile_name)
        try:
            reply = await bus.execute(ref.unit, profile.read_doors(ref.channel + 1), "read doors")
            states = profile.decode_doors(reply.bits, ref.channel + 1)
        except BridgeError:  # a failed read is an unknown door, never a guess
            return DoorState.UNKNOWN
        return states[ref.channel]


def _modbus_profile(ref: ChannelRef, profile: str) -> None:
    """UnknownChannel for a profile no Modbus board has (a kerong-cu one) or unit 0."""
    if profile not in PROFILES:
        raise UnknownChannel(
            f"bus {ref.bus!r} is a Modbus bus: no {profile} board is on it",
            fix=f"give a Modbus profile ({', '.join(PROFILES)})",
        )
    if ref.unit < 1:
        raise UnknownChannel(
            f"bus {ref.bus!r}: Modbus units are 1..247, not {ref.unit}", fix="give the unit"
        )
