"""The simulated board over a real pty, driven by pymodbus's real AsyncModbusSerialClient (RTU)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType
from support.clock import FakeClock

from firmware_bridge.simboard import SimBus, serve_pty

#: A reply is awaited this long: far more than the pty's ~5 ms on a loaded machine, so a
#: test that expects an answer never sees a timeout it did not make (a silence waits it out).
TIMEOUT_S = 1.0
#: A client that only ever meets silence (nothing could answer it) waits this long instead.
SILENCE_TIMEOUT_S = 0.15


@dataclass
class Rig:
    bus: SimBus
    path: str
    client: AsyncModbusSerialClient


def serial_client(
    path: str, baudrate: int = 115200, retries: int = 0, timeout: float = TIMEOUT_S
) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(
        path, framer=FramerType.RTU, baudrate=baudrate, timeout=timeout, retries=retries
    )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    bus = SimBus.of(3, 8, pulse_ms_default=60, open_delay_s=0.02)
    link = await serve_pty(bus)
    client = serial_client(link.path, retries=1)
    assert await client.connect()
    yield Rig(bus, link.path, client)
    client.close()
    await link.stop()


async def door_bits(client: AsyncModbusSerialClient, unit: int) -> list[bool]:
    reply = await client.read_discrete_inputs(0, count=8, device_id=unit)
    assert not reply.isError()
    return reply.bits[:8]


async def test_input_registers_say_map_version_and_channel_count(rig):
    for unit in (1, 2, 3):
        reply = await rig.client.read_input_registers(0, count=2, device_id=unit)
        assert reply.registers == [1, 8] and reply.dev_id == unit


async def test_unlock_pulse_opens_the_door_and_fc02_shows_it():
    clock = FakeClock()  # the boards' time moves only when the test moves it
    bus = SimBus.of(3, 8, pulse_ms_default=60, open_delay_s=0.02, clock=clock.monotonic)
    link = await serve_pty(bus)
    client = serial_client(link.path, retries=1)
    try:
        assert await client.connect()
        reply = await client.write_coil(5, True, device_id=2)
        assert not reply.isError() and reply.address == 5 and reply.bits[0]
        coils = await client.read_coils(0, count=8, device_id=2)
        assert coils.bits[5]  # energised: the pulse is 60 ms and none of it has passed
        assert not (await door_bits(client, 2))[5]  # the door springs 20 ms into the pulse
        clock.elapse(0.03)
        assert (await door_bits(client, 2))[5]
        assert (await client.read_coils(0, count=8, device_id=2)).bits[5]
        clock.elapse(0.04)  # 70 ms in: the pulse is over
        coils = await client.read_coils(0, count=8, device_id=2)
        assert not any(coils.bits[:8])  # the board cleared its own coil
        assert [(p.unit, p.channel, p.ms) for p in bus.pulses] == [(2, 5, 60)]
    finally:
        client.close()
        await link.stop()


async def test_several_units_share_one_bus(rig):
    await rig.client.write_coil(0, True, device_id=1)
    await rig.client.write_coil(7, True, device_id=3)
    await asyncio.sleep(0.05)
    assert (await door_bits(rig.client, 1)) == [True] + [False] * 7
    assert (await door_bits(rig.client, 2)) == [False] * 8
    assert (await door_bits(rig.client, 3)) == [False] * 7 + [True]


async def test_unknown_unit_is_silence_a_timeout_not_an_exception_reply(rig):
    client = serial_client(rig.path, retries=0)
    rig.client.close()  # one master on the line
    assert await client.connect()
    try:
        start = time.monotonic()
        with pytest.raises(ModbusIOException, match="No response"):
            await client.read_discrete_inputs(0, count=8, device_id=42)
        assert time.monotonic() - start >= TIMEOUT_S
        assert [f.outcome for f in rig.bus.frames] == ["not_mine"]
        # The line is fine: the next request to a real unit is answered.
        assert (await client.read_input_registers(1, count=1, device_id=1)).registers == [8]
    finally:
        client.close()


async def test_bad_address_and_unknown_function_get_exception_replies(rig):
    reply = await rig.client.read_discrete_inputs(0, count=9, device_id=1)
    assert reply.isError() and reply.exception_code == ExcCodes.ILLEGAL_ADDRESS
    reply = await rig.client.write_coil(8, True, device_id=1)
    assert reply.isError() and reply.exception_code == ExcCodes.ILLEGAL_ADDRESS
    reply = await rig.client.report_device_id(device_id=1)
    assert reply.isError() and reply.exception_code == ExcCodes.ILLEGAL_FUNCTION
    assert not rig.bus.pulses


async def test_pulse_register_reads_and_writes(rig):
    assert (await rig.client.read_holding_registers(0, count=1, device_id=3)).registers == [60]
    assert not (await rig.client.write_register(0, 25, device_id=3)).isError()
    reply = await rig.client.write_register(0, 0, device_id=3)
    assert reply.isError() and reply.exception_code == ExcCodes.ILLEGAL_VALUE
    assert rig.bus[3].pulse_ms == 25 and rig.bus[1].pulse_ms == 60


async def test_corrupted_reply_fails_the_client_check(rig):
    rig.bus.corrupt_next(2)  # the first try and the one retry
    with pytest.raises(ModbusIOException):
        await rig.client.write_coil(1, True, device_id=1)
    # The board acted both times: a retried unlock is a second pulse.
    assert [f.outcome for f in rig.bus.frames] == ["corrupted", "corrupted"]
    assert len(rig.bus.pulses) == 2
    assert (await rig.client.read_input_registers(0, count=1, device_id=1)).registers == [1]


async def test_dropped_request_times_out_then_the_retry_works(rig):
    rig.bus.drop_next()
    start = time.monotonic()
    reply = await rig.client.read_input_registers(0, count=2, device_id=2)
    assert reply.registers == [1, 8] and reply.retries == 1
    assert time.monotonic() - start >= TIMEOUT_S
    assert [f.outcome for f in rig.bus.frames] == ["dropped", "reply"]


async def test_slow_reply_arrives_late_but_within_the_timeout():
    """The board holds its reply back for `slow_s` (and the wire time), and only then sends
    it; a client whose timeout is far longer waits for it: one frame, one reply, no retry.
    Seen as the order of events, not on a stopwatch."""
    events: list[object] = []

    async def hold(delay: float) -> None:  # the simulator's own wait, observed
        events.append(("held", delay))
        await asyncio.sleep(delay)
        events.append(("sent", request.done()))

    bus = SimBus.of(1, 8)
    bus.slow_s = 0.1
    link = await serve_pty(bus, sleep=hold)
    client = serial_client(link.path, retries=1)
    try:
        assert await client.connect()
        request = asyncio.ensure_future(client.read_input_registers(0, count=2, device_id=1))
        reply = await request
        events.append("received")
        assert reply.registers == [1, 8] and reply.retries == 0
        wire_s = (8 + 9) * 10 / 115200  # request and reply on the wire at 115200 baud
        # Held for slow_s on top of the wire time, sent once the hold was over (the client
        # had nothing yet), and received as the answer, not after a timeout and a retry.
        assert events == [("held", pytest.approx(bus.slow_s + wire_s)), ("sent", False), "received"]
        assert [f.outcome for f in bus.frames] == ["reply"]
    finally:
        client.close()
        await link.stop()


async def test_unplugged_board_is_silent_and_its_neighbours_answer(rig):
    rig.bus[2].silent = True
    with pytest.raises(ModbusIOException):
        await rig.client.read_input_registers(0, count=1, device_id=2)
    assert (await rig.client.read_input_registers(0, count=1, device_id=3)).registers == [1]


async def test_broadcast_unlock_reaches_every_board_and_gets_no_reply(rig):
    result = await rig.client.write_coil(4, True, device_id=0, no_response_expected=True)
    assert result is None
    # Polled with no turnaround gap: the board splits the two frames and answers the poll.
    reply = await rig.client.read_input_registers(1, count=1, device_id=1)
    assert reply.registers == [8]
    assert sorted((p.unit, p.channel) for p in rig.bus.pulses) == [(1, 4), (2, 4), (3, 4)]
    assert [f.outcome for f in rig.bus.frames] == ["broadcast", "reply"]


async def test_script_faults_seen_through_the_client(rig):
    board = rig.bus[1]
    board.jam(0)
    board.force_open(1)
    board.stuck_sensor(2, True)
    await rig.client.write_coil(0, True, device_id=1)
    await asyncio.sleep(0.05)
    assert (await door_bits(rig.client, 1))[:3] == [False, True, True]
    assert [p.channel for p in rig.bus.pulses] == [0]


async def test_a_client_may_close_and_a_new_one_open_the_same_pty(rig):
    rig.client.close()
    for _ in range(2):
        client = serial_client(rig.path)
        assert await client.connect()
        assert (await client.read_input_registers(0, count=2, device_id=3)).registers == [1, 8]
        client.close()


async def test_9600_baud_bus_answers_at_wire_speed():
    bus = SimBus.of(1, 4)
    link = await serve_pty(bus, baudrate=9600)
    client = serial_client(link.path, baudrate=9600)
    try:
        assert await client.connect()
        start = time.monotonic()
        assert (await client.read_input_registers(0, count=2, device_id=1)).registers == [1, 4]
        assert time.monotonic() - start >= (8 + 9) * 10 / 9600  # request + reply on the wire
    finally:
        client.close()
        await link.stop()


async def test_client_at_the_wrong_baud_rate_hears_nothing(tmp_path):
    bus = SimBus.of(1, 4)
    link = await serve_pty(bus, baudrate=115200, link=str(tmp_path / "ttySIM0"))
    client = serial_client(link.path, baudrate=9600, timeout=SILENCE_TIMEOUT_S)
    try:
        assert link.path == str(tmp_path / "ttySIM0")
        assert await client.connect()
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=2, device_id=1)
        assert [f.outcome for f in bus.frames] == ["bad_frame"]
    finally:
        client.close()
        await link.stop()
    assert not (tmp_path / "ttySIM0").exists()


async def test_reply_later_than_the_timeout_lands_on_the_next_request():
    """RTU has no transaction id: pymodbus 3.16 hands a late reply to whatever asks next.

    A client must check the reply's function code (and wait out a late reply)
    before trusting it. The simulator holds its first reply back until the client
    has given up on it and sent its next request, so "late" is an order of events.
    """
    sends = 0
    next_request_sent = asyncio.Event()

    def trace(sending: bool, data: bytes) -> bytes:
        nonlocal sends
        if sending:
            sends += 1
            if sends == 2:
                next_request_sent.set()
        return data

    holds: list[float] = []

    async def hold(delay: float) -> None:
        if not holds:  # the first reply: later than the timeout, whatever the timeout is
            await next_request_sent.wait()
        holds.append(delay)
        await asyncio.sleep(delay)

    bus = SimBus.of(1, 8)
    link = await serve_pty(bus, sleep=hold)
    client = AsyncModbusSerialClient(
        link.path,
        framer=FramerType.RTU,
        baudrate=115200,
        timeout=TIMEOUT_S,
        retries=0,
        trace_packet=trace,
    )
    try:
        assert await client.connect()
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=2, device_id=1)
        assert not holds  # the reply was still held when the client gave up
        reply = await client.read_discrete_inputs(0, count=8, device_id=1)
        assert reply.function_code == 4  # the late FC04 reply, not the FC02 one asked for
    finally:
        client.close()
        await link.stop()


async def test_a_board_keeping_exact_time_serves_the_same_frames() -> None:
    """`precise` (what the lock-bus benchmark uses) changes when a reply goes out, never
    what it says: identity, a pulse, the door inputs, through the real client."""
    from firmware_bridge.bank import ChannelRef, DoorState
    from firmware_bridge.modbus import BoardSpec, BusSettings, ModbusBus, ModbusLockBank

    sim = SimBus.of(units=2, channels=4, open_delay_s=0.0)
    link = await serve_pty(sim, baudrate=9600, precise=True)
    settings = BusSettings("rs485", "rtu", device=link.path, baudrate=9600, timeout_s=0.5)
    specs = [BoardSpec("rs485", unit, channels=4, pulse_ms=200) for unit in (1, 2)]
    bank = ModbusLockBank([ModbusBus(settings)], specs)
    try:
        await bank.start()
        await bank.unlock(ChannelRef("rs485", 2, 3))
        assert [(p.unit, p.channel, p.ms) for p in sim.pulses] == [(2, 3, 200)]
        doors = await bank.read_doors()
        assert doors[ChannelRef("rs485", 2, 3)] is DoorState.OPEN
        assert doors[ChannelRef("rs485", 1, 0)] is DoorState.SHUT
        assert all(f.outcome == "reply" for f in sim.frames)
    finally:
        await bank.close()
        await link.stop()
