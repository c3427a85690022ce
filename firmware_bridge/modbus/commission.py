"""Pulsing a channel of a board the config does not drive yet, for `kiosk hardware map`.

The daemon's ModbusLockBank delegates here for any (unit, channel) that is not
one of its configured boards' channels. Each opening identifies the board
first (a kiosk-v1 board must say map v1 or v2 and have the channel), writes
the pulse length (capped as any configured board's is), then sends the one
unlock write, with the same "did it land?" read-back before any re-send. A
pulse still running on that channel is never extended.
"""

from __future__ import annotations

import asyncio

from firmware_bridge.bank import BridgeError, ChannelRef, DoorState, UnknownChannel
from firmware_bridge.modbus.bus import ModbusBus
from firmware_bridge.modbus.profiles import profile_for


class Commissioner:
    """Pulse ends per channel, so that two openings of one channel never overlap."""

    def __init__(self) -> None:
        self._pulse_ends: dict[ChannelRef, float] = {}

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
