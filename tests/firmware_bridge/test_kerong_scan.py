"""`kiosk hardware scan` on a KR-CU line: every address 0..15 asked its status, nothing unlocked.

The simulated boards answer over a real pty; the scan goes through the
daemon's bank (MultiBank -> KerongLockBank, between its door reads) and
through a line opened for the scan alone (the daemon stopped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from firmware_bridge.bank import ChannelRef, DoorState, FoundBoard, UnknownChannel
from firmware_bridge.kerong import KerongBoardSpec, KerongBus, KerongBusSettings, KerongLockBank
from firmware_bridge.kerong.probe import scan_port
from firmware_bridge.kerong.sim import SimKerongBoard, SimKerongLine, serve_kerong_pty
from firmware_bridge.multibank import MultiBank

#: Generous: the simulated board shares a busy machine (a silent address costs this much).
WAIT_S = 1.0
#: Boards at every address but three (9 is fitted but silent, 14 and 15 are empty): each
#: silent address costs the whole WAIT_S, so the line is nearly full.
OTHERS = [a for a in range(1, 14) if a not in (7, 9)]


@pytest.fixture
async def line() -> AsyncIterator[tuple[SimKerongLine, str]]:
    sim = SimKerongLine(
        [
            SimKerongBoard(0, locks=2, occupied={1}),
            SimKerongBoard(7),
            SimKerongBoard(9, silent=True),  # a board that does not answer is not listed
            *(SimKerongBoard(address) for address in OTHERS),
        ]
    )
    link = await serve_kerong_pty(sim)
    yield sim, link.path
    await link.stop()


KEYS = ("bus", "unit", "profile", "map_version", "channels", "presence_sensors", "configured")


def _found(boards: list[FoundBoard]) -> list[tuple[object, ...]]:
    return [tuple(board.to_dict()[key] for key in KEYS) for board in boards]


async def test_the_daemons_bank_scans_every_address_between_its_reads(line):
    sim, path = line
    bus = KerongBus(KerongBusSettings("cu", path, timeout_s=WAIT_S, retries=0))
    bank = KerongLockBank(bus, [KerongBoardSpec("cu", 0, 2, ir_sensors=True)])
    multi = MultiBank({"cu": bank})
    await multi.start()
    try:
        # `units` is a Modbus range: a KR-CU line is asked at its 16 addresses whatever it says.
        found = await multi.scan("cu", range(1, 248), WAIT_S)
        assert _found(found) == [
            ("cu", a, "kerong-cu", None, 16, 16, a == 0) for a in sorted([0, 7, *OTHERS])
        ]
        assert all(board.unlocks == [] for board in sim.boards.values())
        # The bank goes on as before; the silent addresses did not mark anything offline.
        doors = await multi.read_doors()
        assert doors[ChannelRef("cu", 0, 0)] is DoorState.SHUT
        assert [info.online for info in multi.describe()] == [True]
        # A Modbus profile is no board of this line: refused, nothing sent.
        with pytest.raises(UnknownChannel, match="map it with profile kerong-cu"):
            await multi.commission_open(ChannelRef("cu", 7, 0), "kiosk-v1")
        assert sim.boards[7].unlocks == []
    finally:
        await multi.close()


async def test_a_line_opened_for_the_scan_alone(line):
    sim, path = line
    settings = KerongBusSettings("cu", path, timeout_s=WAIT_S, retries=0)
    found = await scan_port(settings, WAIT_S, configured=[7])
    assert _found(found) == [
        ("cu", a, "kerong-cu", None, 16, 16, a == 7) for a in sorted([0, 7, *OTHERS])
    ]
    assert all(board.unlocks == [] for board in sim.boards.values())
