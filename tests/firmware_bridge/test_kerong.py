"""Kerong KR-CU boards: the frame codec, and the bank over the simulated line on a real pty."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from firmware_bridge.bank import BoardUnavailable, ChannelRef, DoorState, last_presence
from firmware_bridge.kerong import (
    BoardSilent,
    KerongBoardSpec,
    KerongBus,
    KerongBusSettings,
    KerongLockBank,
    codec,
)
from firmware_bridge.kerong.sim import SimKerongBoard, SimKerongLine, serve_kerong_pty


def test_frames_match_the_published_examples():
    # The bytes the public drivers send (docs/hardware.md): unlock lock 1 of board 0,
    # the status of board 0, and the sum-of-bytes checksum including STX and ETX.
    assert codec.unlock_frame(0, 0) == bytes([0x02, 0x00, 0x31, 0x03, 0x36])
    assert codec.status_frame(0) == bytes([0x02, 0x00, 0x30, 0x03, 0x35])
    assert codec.unlock_frame(2, 15) == bytes([0x02, 0x2F, 0x31, 0x03, 0x65])
    assert codec.status_frame(3) == bytes([0x02, 0x30, 0x30, 0x03, 0x65])


def test_a_status_reply_decodes_hooks_and_ir_bits_low_byte_first():
    raw = codec.status_reply(1, hooks=0b1000_0000_0000_0101, infrared=0b10)
    assert raw[:3] == bytes([0x02, 0x10, 0x35]) and raw[7] == 0x03
    (frame,) = codec.FrameParser().feed(raw)
    status = codec.decode_status(frame)
    assert (status.board, status.closed(0), status.closed(1), status.closed(2)) == (
        1,
        True,
        False,
        True,
    )
    assert status.closed(15) and status.occupied(1) and not status.occupied(0)


def test_the_parser_rejects_a_bad_checksum_and_resyncs_on_the_next_frame():
    good = codec.status_reply(0, 0xFFFF, 0)
    bad = good[:-1] + bytes([good[-1] ^ 0x01])
    parser = codec.FrameParser()
    frames = parser.feed(b"\x99" + bad + good[:4])
    assert frames == [] and parser.bad_checksums == 1
    frames = parser.feed(good[4:])
    assert [f.cmd for f in frames] == [codec.CMD_STATUS_REPLY]


def test_addresses_outside_the_nibbles_are_refused():
    with pytest.raises(ValueError, match=r"board address must be 0\.\.15"):
        codec.address(16)
    with pytest.raises(ValueError, match=r"lock index must be 0\.\.15"):
        codec.address(0, 16)


@pytest.fixture
async def line() -> AsyncIterator[tuple[SimKerongLine, str]]:
    sim = SimKerongLine([SimKerongBoard(0, occupied={2}), SimKerongBoard(1, locks=12, silent=True)])
    link = await serve_kerong_pty(sim)
    yield sim, link.path
    await link.stop()


#: A reply is awaited this long: far more than the pty's answer takes on a loaded machine,
#: so a test that expects answers never sees a timeout it did not make.
TIMEOUT_S = 1.0
#: The tests that wait out a silent board (and get board 0's answers too) wait this long.
SILENCE_TIMEOUT_S = 0.3


def _bank(
    path: str, *specs: KerongBoardSpec, retries: int = 1, timeout_s: float = TIMEOUT_S
) -> KerongLockBank:
    bus = KerongBus(KerongBusSettings("cu", path, timeout_s=timeout_s, retries=retries))
    return KerongLockBank(bus, specs or (KerongBoardSpec("cu", 0, 16, ir_sensors=True),))


async def test_unlock_sends_one_frame_and_the_hook_reads_open(line):
    sim, path = line
    bank = _bank(path)
    await bank.start()
    try:
        before = await bank.read_doors()
        assert before[ChannelRef("cu", 0, 4)] is DoorState.SHUT
        await bank.unlock(ChannelRef("cu", 0, 4))
        assert sim.boards[0].unlocks == [4]
        doors = await bank.read_doors()
        assert doors[ChannelRef("cu", 0, 4)] is DoorState.OPEN
        assert doors[ChannelRef("cu", 0, 5)] is DoorState.SHUT
        sim.boards[0].shut(4)
        assert (await bank.read_doors())[ChannelRef("cu", 0, 4)] is DoorState.SHUT
        (info,) = bank.describe()
        assert (info.kind, info.counters["pulses"], info.presence_sensors) == ("kerong-cu", 1, 16)
    finally:
        await bank.close()


async def test_ir_sensors_are_the_presence_read_with_the_doors(line):
    sim, path = line
    bank = _bank(path)
    await bank.start()
    try:
        await bank.read_doors()
        seen = last_presence(bank)
        assert seen[ChannelRef("cu", 0, 2)] is True and seen[ChannelRef("cu", 0, 3)] is False
        sim.boards[0].occupied = {3}
        await bank.read_doors({("cu", 0)})
        seen = last_presence(bank)
        assert seen[ChannelRef("cu", 0, 2)] is False and seen[ChannelRef("cu", 0, 3)] is True
    finally:
        await bank.close()


async def test_a_board_without_ir_sensors_says_no_presence(line):
    _, path = line
    bank = _bank(path, KerongBoardSpec("cu", 0, 16))
    await bank.start()
    try:
        await bank.read_doors()
        assert set(last_presence(bank).values()) == {None}
        assert bank.describe()[0].presence_sensors == 0
    finally:
        await bank.close()


async def test_a_reply_with_a_bad_checksum_is_never_taken(line):
    sim, path = line
    sim.boards[0].corrupt = True
    bus = KerongBus(KerongBusSettings("cu", path, timeout_s=TIMEOUT_S, retries=1))
    await bus.connect()
    try:
        with pytest.raises(BoardSilent, match="not a valid frame") as caught:
            await bus.status(0)
        assert bus.health(0).bad_frames == 2 and bus.health(0).timeouts == 0
        assert caught.value.code == "board_not_answering"
    finally:
        await bus.close()


async def test_a_silent_board_times_out_with_a_clear_bridge_error(line):
    _, path = line
    bank = _bank(
        path, KerongBoardSpec("cu", 0), KerongBoardSpec("cu", 1, 12), timeout_s=SILENCE_TIMEOUT_S
    )
    await bank.start()  # board 0 answers, so the bank starts
    try:
        doors = await bank.read_doors()
        assert doors[ChannelRef("cu", 1, 0)] is DoorState.UNKNOWN
        with pytest.raises(BoardUnavailable) as caught:
            await bank.unlock(ChannelRef("cu", 1, 3))
        text = str(caught.value)
        assert "bus 'cu': Kerong board 1 did not answer" in text and "address switch" in text
        assert not bank.describe()[1].online
    finally:
        await bank.close()


async def test_a_line_where_no_board_answers_does_not_start(line):
    _, path = line
    bank = _bank(path, KerongBoardSpec("cu", 1, 12), retries=0, timeout_s=SILENCE_TIMEOUT_S)
    with pytest.raises(BoardUnavailable, match="no Kerong board answered at address 1"):
        await bank.start()


async def test_a_missing_port_names_the_device(tmp_path):
    bank = _bank(str(tmp_path / "ttyUSB9"))
    with pytest.raises(BoardUnavailable, match="ttyUSB9 does not exist"):
        await bank.start()
