"""`kiosk hardware map` on a KR-CU line: the daemon's bank opens a lock of a board it may not have.

The simulated boards answer over a real pty; the openings go through the
daemon's bank (MultiBank -> KerongLockBank): one unlock frame (0x31) each,
then a status request (0x30) that proves the board heard and reads the hook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from firmware_bridge.bank import BridgeError, ChannelRef, DoorState, UnknownChannel
from firmware_bridge.kerong import KerongBoardSpec, KerongBus, KerongBusSettings, KerongLockBank
from firmware_bridge.kerong.sim import SimKerongBoard, SimKerongLine, serve_kerong_pty
from firmware_bridge.multibank import MultiBank

#: Generous: the simulated board shares a busy machine.
WAIT_S = 1.0


@pytest.fixture
async def bank() -> AsyncIterator[tuple[SimKerongLine, MultiBank]]:
    """Board 0 configured (2 locks); board 5 new (16 locks); board 9 fitted but silent."""
    sim = SimKerongLine([SimKerongBoard(0), SimKerongBoard(5), SimKerongBoard(9, silent=True)])
    link = await serve_kerong_pty(sim)
    bus = KerongBus(KerongBusSettings("cu", link.path, timeout_s=WAIT_S, retries=0))
    multi = MultiBank({"cu": KerongLockBank(bus, [KerongBoardSpec("cu", 0, 2)])})
    await multi.start()
    yield sim, multi
    await multi.close()
    await link.stop()


async def test_a_new_boards_lock_is_opened_once_and_its_hook_read(bank):
    sim, multi = bank
    assert await multi.commission_open(ChannelRef("cu", 5, 3), "kerong-cu") == 16
    assert sim.boards[5].unlocks == [3]
    assert await multi.commission_door(ChannelRef("cu", 5, 3), "kerong-cu") is DoorState.OPEN
    assert await multi.commission_door(ChannelRef("cu", 5, 4), "kerong-cu") is DoorState.SHUT
    # A configured board's lock goes through the bank's own unlock: its channel count.
    assert await multi.commission_open(ChannelRef("cu", 0, 1), "kerong-cu") == 2
    assert sim.boards[0].unlocks == [1]
    assert all(not board.unlocks for a, board in sim.boards.items() if a not in (0, 5))


async def test_what_a_kr_cu_line_does_not_have_is_refused_and_nothing_is_unlocked(bank):
    sim, multi = bank
    for ref, why in (
        (ChannelRef("cu", 5, 16), "has locks 0..15, not 16"),
        (ChannelRef("cu", 16, 0), "a Kerong board address is 0..15"),
    ):
        with pytest.raises(UnknownChannel, match=why):
            await multi.commission_open(ref, "kerong-cu")
    # A silent board: the unlock went out, but nothing proves it heard.
    with pytest.raises(BridgeError):
        await multi.commission_open(ChannelRef("cu", 9, 0), "kerong-cu")
    assert await multi.commission_door(ChannelRef("cu", 9, 0), "kerong-cu") is DoorState.UNKNOWN
    assert all(not board.unlocks for a, board in sim.boards.items() if a != 9)
