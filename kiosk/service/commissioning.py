"""Commissioning a new bank: scan a bus for boards, and open channels one by one to map them.

The daemon owns the bus, so `kiosk hardware scan` (with the daemon running)
and every opening of `kiosk hardware map` come through here. A scan only
reads. An opening is audited (`hardware.map_open`, with bus, unit and
channel) in its own committed row before the pulse, like a technician's
opening of a locker, even for channels no locker has yet; a channel that IS a
configured locker's is refused (it may hold a parcel: `kiosk open` journals
that properly).
"""

from __future__ import annotations

import json
import re
from typing import Any

from firmware_bridge.bank import (
    BridgeError,
    ChannelRef,
    CommissioningBank,
    DoorState,
    HasCommissioning,
)
from kiosk.config.model import MAX_BANK_COLUMNS, MAX_BANK_ROWS
from kiosk.domain.errors import BadRequest, HardwareError
from kiosk.domain.sizes import Size
from kiosk.service.context import ServiceContext

#: Profiles a channel can be opened with (the board's kind; see firmware_bridge.modbus.profiles
#: and, for a Kerong KR-CU board on a kerong-cu bus, firmware_bridge.kerong).
MAP_PROFILES = ("kiosk-v1", "waveshare-relay-d", "kerong-cu")
KERONG = "kerong-cu"
#: A KR-CU board's addresses (its DIP switch) and locks (a KR-CU16's).
KERONG_UNITS, KERONG_LOCKS = 16, 16


def _check_unit(profile: str, unit: int) -> None:
    if profile not in MAP_PROFILES:
        raise BadRequest(f"profile must be one of {', '.join(MAP_PROFILES)}.")
    if profile == KERONG and not 0 <= unit < KERONG_UNITS:
        raise BadRequest(f"A Kerong board's unit (address) is 0 to {KERONG_UNITS - 1}.")
    if profile != KERONG and unit < 1:
        raise BadRequest("A Modbus board's unit is 1 to 247.")


class Commissioning:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _bank(self) -> CommissioningBank:
        bank = self.ctx.bank
        if isinstance(bank, HasCommissioning):
            return bank.commissioning()
        if not isinstance(bank, CommissioningBank):
            raise BadRequest("This bank's hardware cannot be scanned or mapped.")
        return bank

    async def scan(self, bus: str, units: range, timeout_s: float) -> list[dict[str, Any]]:
        """The boards that answered on `bus` among `units` (reads only, nothing is audited)."""
        try:
            found = await self._bank().scan(bus, list(units), timeout_s)
        except BridgeError as exc:
            raise BadRequest(f"Cannot scan bus {bus!r}: {exc}") from None
        return [board.to_dict() for board in found]

    async def map_open(
        self, bus: str, unit: int, channel: int, profile: str, actor: str
    ) -> dict[str, Any]:
        """Audit, pulse channel `channel` of board `unit`, and watch its door for a while.

        Returns the board's channel count and what its door sensor said:
        "open" once seen open within the policy's door_open_timeout_s, else the
        last reading ("shut", or "unknown" if it could not be read).
        """
        _check_unit(profile, unit)
        ref = ChannelRef(bus, unit, channel)
        taken = next((lb for lb, r in self.ctx.channels.items() if r == ref), None)
        if taken is not None:
            raise BadRequest(
                f"Channel {ref} is locker {taken}'s already: open it with `kiosk open {taken}`.",
                locker=taken,
            )
        bank = self._bank()
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            ledger.audit.record(
                now, actor, "hardware.map_open", str(ref), bus=bus, unit=unit, channel=channel
            )
        try:
            channels = await bank.commission_open(ref, profile)
        except BridgeError as exc:
            raise HardwareError(f"Channel {ref} was not opened: {exc}") from None
        door = await self._watch(bank, ref, profile)
        return {"bus": bus, "unit": unit, "channel": channel, "channels": channels, "door": door}

    async def _watch(self, bank: CommissioningBank, ref: ChannelRef, profile: str) -> str:
        clock = self.ctx.clock
        deadline = clock.monotonic() + self.ctx.policy.door_open_timeout_s
        while True:
            state = await bank.commission_door(ref, profile)
            if state is DoorState.OPEN or clock.monotonic() >= deadline:
                return state.value
            await self.ctx.sleep(self.ctx.poll_s)

    def map_entries(
        self,
        bus: str,
        unit: int,
        profile: str,
        channels: int,
        lockers: list[dict[str, Any]],
        ir_sensors: bool = False,
    ) -> str:
        """The TOML of a mapped board: its [[board]] (unless configured) and [[locker]]s.

        Each locker is {"label", "size", "channel"} and optionally "column", "row".
        BadRequest, naming the locker, on a label taken or malformed, a size that is
        not S/M/L, a channel outside 0..channels-1 or used twice, a column or row
        out of range. Nothing is written anywhere: the caller puts it in a file.
        A kerong-cu board's [[board]] also says `ir_sensors` (the technician's answer).
        """
        _check_unit(profile, unit)
        top = KERONG_LOCKS if profile == KERONG else 64
        if not 1 <= channels <= top:
            raise BadRequest(f"channels must be 1 to {top}.")
        configured = any((b.bus, b.unit) == (bus, unit) for b in self.ctx.bank.describe())
        taken = set(self.ctx.channels)
        used_channels = {
            r.channel for r in self.ctx.channels.values() if (r.bus, r.unit) == (bus, unit)
        }
        lines = [f"# Mapped by `kiosk hardware map`: bus {bus!r} board {unit}."]
        if not configured:
            lines += ["[[board]]", f"bus = {_quote(bus)}", f"unit = {unit}"]
            lines += [f"profile = {_quote(profile)}", f"channels = {channels}"]
            if profile == KERONG:
                lines.append(f"ir_sensors = {'true' if ir_sensors else 'false'}")
        for entry in lockers:
            label, size, channel = _locker(entry, channels)
            if label in taken:
                raise BadRequest(f"Label {label} is taken already; give another.", locker=label)
            if channel in used_channels:
                raise BadRequest(f"Channel {channel} has a locker already ({label}).", locker=label)
            taken.add(label)
            used_channels.add(channel)
            lines += ["", "[[locker]]", f"label = {_quote(label)}", f"size = {_quote(size)}"]
            lines += [f"bus = {_quote(bus)}", f"unit = {unit}", f"channel = {channel}"]
            for key, top in (("column", MAX_BANK_COLUMNS), ("row", MAX_BANK_ROWS)):
                value = entry.get(key)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                    raise BadRequest(f"{label}: {key} must be 1 to {top}.", locker=label)
                lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"


_LABEL = re.compile(r"[A-Za-z0-9-]{1,16}")


def _quote(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for these characters)."""
    return json.dumps(text)


def _locker(entry: dict[str, Any], channels: int) -> tuple[str, str, int]:
    label = entry.get("label")
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise BadRequest("A label is 1 to 16 characters of A-Z a-z 0-9 -.", locker=str(label))
    try:
        size = Size.parse(str(entry.get("size", ""))).value
    except ValueError as exc:
        raise BadRequest(f"{label}: {exc}", locker=label) from None
    channel = entry.get("channel")
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < channels:
        raise BadRequest(f"{label}: channel must be 0 to {channels - 1}.", locker=label)
    return label, size, channel
