"""On the wire: raw FC05 values, the inter-frame gap, and serial ports that cannot be opened."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from firmware_bridge.bank import ChannelRef, DoorState
from firmware_bridge.modbus import (
    BoardNotAnswering,
    BoardSpec,
    BusSettings,
    ModbusBus,
    ModbusLockBank,
    SerialPermissionDenied,
    SerialPortMissing,
    frame_gap_s,
)
from firmware_bridge.modbus.pdu import RawWriteSingleCoil
from firmware_bridge.modbus.profiles import ReadBits, WriteCoil
from firmware_bridge.simboard import PtyLink, SimBoard, SimBus, serve_pty

BUS = "rs485"
#: Every request here expects its reply, none waits a timeout out: a short timeout would
#: race the reply on a busy machine (a late reply counts as a timeout and lands in the retry).
REPLY_TIMEOUT_S = 5.0


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """An RTU frame with pymodbus's CRC (the CRC is pymodbus's; never computed here)."""
    body = bytes([unit]) + pdu
    return body + FramerRTU.compute_CRC(body).to_bytes(2, "big")


class WaveshareSimBoard(SimBoard):
    """Test fake: a SimBoard that also takes Waveshare's "flash on" (FC05 at 0x0200 + ch,
    value = on-time in 100 ms units) and echoes it, as the Relay (D) does."""

    FLASH_ON = 0x0200

    def handle(self, pdu: bytes) -> ModbusPDU:
        if pdu[:1] == b"\x05" and len(pdu) >= 5:
            address, value = struct.unpack(">HH", pdu[1:5])
            if self.FLASH_ON <= address < self.FLASH_ON + self.channels:
                self.pulse_ms = value * 100
                self.pulse(address - self.FLASH_ON)
                return RawWriteSingleCoil(address, value, dev_id=self.unit)
        return super().handle(pdu)


@pytest.fixture
async def waveshare_link() -> AsyncIterator[tuple[SimBus, PtyLink]]:
    sim = SimBus([WaveshareSimBoard(1, 8, open_delay_s=0.01)])
    link = await serve_pty(sim, baudrate=115200)
    yield sim, link
    await link.stop()


async def test_waveshare_flash_on_goes_out_as_fc05_0x0200_plus_channel_with_the_raw_value(
    waveshare_link: tuple[SimBus, PtyLink],
) -> None:
    sim, link = waveshare_link
    bus = ModbusBus(BusSettings(BUS, "rtu", device=link.path, timeout_s=REPLY_TIMEOUT_S))
    spec = BoardSpec(BUS, 1, profile="waveshare-relay-d", channels=8, pulse_ms=450)
    bank = ModbusLockBank([bus], [spec])
    await bank.start()
    try:
        await bank.unlock(ChannelRef(BUS, 1, 3))
        # 450 ms rounds up to 5 units of 100 ms: value 0x0005 at address 0x0203
        assert sim.frames[-1].raw == rtu_frame(1, bytes.fromhex("05 0203 0005"))
        assert sim.frames[-1].outcome == "reply"
        assert FramerRTU.check_CRC(sim.frames[-1].raw[:-2], int.from_bytes(sim.frames[-1].raw[-2:]))
        assert [(p.channel, p.ms) for p in sim.pulses] == [(3, 500)]
        deadline = asyncio.get_running_loop().time() + 1
        while (await bank.read_doors())[ChannelRef(BUS, 1, 3)] is not DoorState.OPEN:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
    finally:
        await bank.close()


async def test_waveshare_contacts_that_close_when_the_door_shuts_read_through_the_config(
    waveshare_link: tuple[SimBus, PtyLink], tmp_path: Path
) -> None:
    """`sensor_open_high = false` on the board: an active input is a shut door."""
    from kiosk.config.loader import parse_config
    from kiosk.wiring import build_lock_bank

    sim, link = waveshare_link
    (tmp_path / "site.key").write_text("x")
    doc = {
        "site": {"id": "relay-01"},
        "ledger": {"path": "ledger.db"},
        "keys": {"site_code_key_file": "site.key"},
        "api": {"socket": "kiosk.sock"},
        "bus": [
            {"name": BUS, "kind": "modbus-rtu", "port": link.path, "timeout_s": REPLY_TIMEOUT_S}
        ],
        "board": [
            {
                "bus": BUS,
                "unit": 1,
                "profile": "waveshare-relay-d",
                "channels": 2,
                "sensor_open_high": False,
            }
        ],
        "locker": [
            {"label": "1", "size": "M", "bus": BUS, "unit": 1, "channel": 0},
            {"label": "2", "size": "M", "bus": BUS, "unit": 1, "channel": 1},
        ],
    }
    config = parse_config(doc, tmp_path / "kiosk.toml")
    bank = build_lock_bank(config)
    board = sim[1]
    # Wired the other way round: the input is active (reads 1) while the door is shut.
    board.stuck_sensor(0, True)
    board.stuck_sensor(1, False)
    await bank.start()
    try:
        doors = await bank.read_doors()
        assert doors[ChannelRef(BUS, 1, 0)] is DoorState.SHUT
        assert doors[ChannelRef(BUS, 1, 1)] is DoorState.OPEN
    finally:
        await bank.close()


class WrongEchoBoard(SimBoard):
    """Test fake: acknowledges every FC05 with a value one off what was asked."""

    def handle(self, pdu: bytes) -> ModbusPDU:
        if pdu[:1] == b"\x05" and len(pdu) >= 5:
            address, value = struct.unpack(">HH", pdu[1:5])
            return RawWriteSingleCoil(address, (value + 1) & 0xFFFF, dev_id=self.unit)
        return super().handle(pdu)


class OtherExceptionBoard(SimBoard):
    """Test fake: answers every FC05 with an exception reply of another function (FC02)."""

    def handle(self, pdu: bytes) -> ModbusPDU:
        if pdu[:1] == b"\x05":
            reply = ExceptionResponse(0x02, 4)
            reply.dev_id = self.unit
            return reply
        return super().handle(pdu)


async def unanswered_write(board: SimBoard) -> tuple[tuple[int, int, int], list[str]]:
    """One FC05 (one retry) to a lone `board` that must end in BoardNotAnswering.

    Returns the bus's (bad_frames, errors, timeouts) for it and the outcome of each
    frame the board saw.
    """
    sim = SimBus([board])
    link = await serve_pty(sim)
    bus = ModbusBus(BusSettings(BUS, "rtu", device=link.path, timeout_s=REPLY_TIMEOUT_S, retries=1))
    await bus.connect()
    try:
        with pytest.raises(BoardNotAnswering):
            await bus.execute(board.unit, WriteCoil(0x0201, 3))
        health = bus.health(board.unit)
        return (health.bad_frames, health.errors, health.timeouts), [f.outcome for f in sim.frames]
    finally:
        await bus.close()
        await link.stop()


async def test_an_exception_reply_of_another_function_is_a_bad_frame_never_a_refusal() -> None:
    """A refusal counts only when its function code is the request's (0x80 | FC)."""
    counts, outcomes = await unanswered_write(OtherExceptionBoard(1, 8))
    assert counts == (2, 0, 0)
    assert outcomes == ["exception", "exception"]


async def test_an_echo_with_another_value_is_a_bad_frame_never_a_success() -> None:
    """The bus checks the FC05 echo's value field, not just that some reply came."""
    counts, _ = await unanswered_write(WrongEchoBoard(1, 8))
    assert counts[0] == 2 and counts[2] == 0  # two bad frames, no timeout


async def test_a_standard_coil_write_is_the_modbus_spec_frame(
    waveshare_link: tuple[SimBus, PtyLink],
) -> None:
    """RawWriteSingleCoil with 0xFF00 is byte for byte the spec's FC05 example."""
    sim, link = waveshare_link
    bus = ModbusBus(BusSettings(BUS, "rtu", device=link.path, timeout_s=REPLY_TIMEOUT_S))
    await bus.connect()
    try:
        await bus.execute(1, WriteCoil(0, 0xFF00))
        assert sim.frames[-1].raw == bytes.fromhex("01 05 0000 FF00 8C3A")
    finally:
        await bus.close()


async def test_the_inter_frame_gap_is_kept_between_requests_at_9600_baud() -> None:
    sim = SimBus.of(units=1, channels=4)
    link = await serve_pty(sim, baudrate=9600)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    settings = BusSettings(BUS, "rtu", device=link.path, baudrate=9600, timeout_s=REPLY_TIMEOUT_S)
    bus = ModbusBus(settings, clock=lambda: 100.0, sleep=sleep)  # frozen: the full gap is due
    await bus.connect()
    try:
        for _ in range(3):
            await bus.execute(1, ReadBits(2, 0, 4))
        assert waits == [pytest.approx(frame_gap_s(9600))] * 2  # not before the first one
        assert frame_gap_s(9600) == pytest.approx(0.00401, abs=1e-5)
    finally:
        await bus.close()
        await link.stop()


async def test_a_missing_serial_port_names_the_path_and_the_fix(tmp_path: Path) -> None:
    path = str(tmp_path / "ttyUSB7")
    bank = ModbusLockBank(
        [ModbusBus(BusSettings(BUS, "rtu", device=path))], [BoardSpec(BUS, 1, channels=4)]
    )
    with pytest.raises(SerialPortMissing) as info:
        await bank.start()
    assert path in str(info.value)
    assert "udev rule" in info.value.fix and "cable" in info.value.fix
    assert info.value.code == "serial_port_missing"


@contextlib.contextmanager
def as_user(uid: int) -> Iterator[None]:
    """Run as `uid` (effective ids only, so root can come back), or stay as we are if not root."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(uid)
    try:
        os.seteuid(uid)
        try:
            yield
        finally:
            os.seteuid(0)
    finally:
        os.setegid(0)


async def test_permission_denied_says_to_join_the_dialout_group() -> None:
    """chmod 000 on a real pty. Root ignores file modes, so as root the check runs with
    the effective uid and gid dropped to `nobody` (65534) for the duration."""
    sim = SimBus.of(units=1, channels=4)
    link = await serve_pty(sim)
    mode = stat.S_IMODE(os.stat(link.path).st_mode)
    os.chmod(link.path, 0)
    try:
        with as_user(65534), pytest.raises(SerialPermissionDenied) as info:
            await ModbusBus(BusSettings(BUS, "rtu", device=link.path)).connect()
        assert link.path in str(info.value)
        assert "dialout" in info.value.fix
        assert info.value.code == "serial_permission_denied"
    finally:
        os.chmod(link.path, mode)
        await link.stop()
