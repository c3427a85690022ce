"""`kiosk hardware scan` on a KR-CU line: ask every board address its status, reads only.

A KR-CU line has board addresses 0..15 (the board's DIP switch). Each is sent
one status request (command 0x30, ADDR = board << 4) and given `timeout_s` to
answer; nothing is unlocked. A board that answers is a `kerong-cu` board of
16 locks whose status reply carries an IR bit for each of them (whether a
sensor is wired to an input the reply cannot tell: an unwired one reads 0).
It has no register map, so its map version is None.
"""

from __future__ import annotations

from collections.abc import Iterable

from firmware_bridge.bank import FoundBoard
from firmware_bridge.kerong import codec
from firmware_bridge.kerong.bus import KerongBus, KerongBusSettings

PROFILE = "kerong-cu"

#: Every address a KR-CU board can have.
ADDRESSES = range(codec.MAX_BOARD + 1)


async def scan_line(
    bus: KerongBus, timeout_s: float, configured: Iterable[int]
) -> list[FoundBoard]:
    """The boards that answered among addresses 0..15 of an open `bus`."""
    mine = set(configured)
    found: list[FoundBoard] = []
    for board in ADDRESSES:
        status = await bus.probe(board, timeout_s)
        if status is None:
            continue
        found.append(
            FoundBoard(
                bus.name,
                board,
                PROFILE,
                map_version=None,
                channels=codec.MAX_LOCKS,
                presence_sensors=codec.MAX_LOCKS,
                configured=board in mine,
            )
        )
    return found


async def scan_port(
    settings: KerongBusSettings, timeout_s: float, configured: Iterable[int]
) -> list[FoundBoard]:
    """Open the line (the daemon is stopped), scan it, close it.

    Raises BoardUnavailable (SerialPortMissing, SerialPermissionDenied,
    BusUnavailable) when the port cannot be opened.
    """
    bus = KerongBus(settings)
    await bus.connect()
    try:
        return await scan_line(bus, timeout_s, configured)
    finally:
        await bus.close()
