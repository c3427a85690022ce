"""The simulated board with no I/O: door physics on a fake clock, register map v1, bus rules."""

from __future__ import annotations

import random

import pymodbus.pdu.bit_message as pdu_bit
import pymodbus.pdu.register_message as pdu_reg
import pytest
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU

from firmware_bridge.simboard import Door, RtuServer, SimBoard, SimBus


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def pdu(request: ModbusPDU) -> bytes:
    """The PDU bytes (function code + data) a client would send, built by pymodbus."""
    return bytes([request.function_code]) + request.encode()


def coil_write(channel: int, on: bool = True) -> bytes:
    return pdu(pdu_bit.WriteSingleCoilRequest(address=channel, bits=[on]))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board(clock: Clock) -> SimBoard:
    return SimBoard(1, 4, pulse_ms_default=500, open_delay_s=0.2, clock=clock)


# -- door physics -----------------------------------------------------------------------


def test_pulse_energises_the_lock_for_the_pulse_time_then_the_board_clears_it(board, clock):
    board.pulse(2)
    assert board.coil(2)
    clock.advance(0.499)
    assert board.coil(2)
    clock.advance(0.001)
    assert not board.coil(2)
    assert [(p.unit, p.channel, p.t, p.ms) for p in board.pulses] == [(1, 2, 100.0, 500)]


def test_door_springs_open_after_the_open_delay_and_stays_open(board, clock):
    board.pulse(0)
    clock.advance(0.19)
    assert not board.is_open(0) and not board.sensor(0)
    clock.advance(0.01)
    assert board.is_open(0) and board.sensor(0)
    clock.advance(3600)
    assert board.sensor(0)
    assert [(e.channel, e.t, e.kind) for e in board.door(0).events] == [(0, 100.2, "opened")]


def test_auto_close_shuts_the_door_that_long_after_it_opened(clock):
    door = Door(1, 0, open_delay_s=0.1, auto_close_s=3.0)
    door.pulse(clock(), 0.5)
    assert door.sensor(clock() + 3.09)
    # One late look settles both changes, each at its own time.
    assert not door.sensor(clock() + 10)
    assert [(e.t, e.kind) for e in door.events] == [(100.1, "opened"), (103.1, "closed")]


def test_jammed_door_never_opens_until_unjammed(board, clock):
    board.jam(1)
    board.pulse(1)
    clock.advance(5)
    assert not board.sensor(1) and len(board.pulses) == 1
    board.jam(1, False)
    board.pulse(1)
    clock.advance(0.2)
    assert board.sensor(1)


def test_forced_door_opens_with_no_pulse(board, clock):
    board.force_open(3)
    assert board.sensor(3) and not board.pulses
    assert [e.kind for e in board.door(3).events] == ["forced"]
    board.close(3)
    assert not board.sensor(3)


def test_stuck_sensor_reads_its_value_whatever_the_door_does(board, clock):
    board.stuck_sensor(0, False)
    board.pulse(0)
    clock.advance(1)
    assert board.is_open(0) and not board.sensor(0)
    board.stuck_sensor(1, True)
    assert not board.is_open(1) and board.sensor(1)
    board.stuck_sensor(0, None)
    assert board.sensor(0)


def test_script_close_cancels_a_pending_spring_and_auto_close(clock):
    door = Door(1, 0, open_delay_s=0.1, auto_close_s=1.0)
    door.pulse(clock(), 0.5)
    door.close(clock() + 0.05)
    assert not door.sensor(clock() + 5)
    door.open(clock() + 6)  # a person opening by hand: no auto-close
    assert door.sensor(clock() + 60)


def test_new_pulse_restarts_the_timer_and_coil_zero_releases_at_once(board, clock):
    board.pulse(0)
    clock.advance(0.4)
    board.pulse(0)
    clock.advance(0.4)
    assert board.coil(0)
    board.handle(coil_write(0, on=False))
    assert not board.coil(0)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError):
        SimBoard(0)
    with pytest.raises(ValueError):
        SimBoard(1, channels=65)
    with pytest.raises(ValueError):
        Door(1, 0, auto_close_s=0)


# -- register map v1 --------------------------------------------------------------------


def test_input_registers_hold_map_version_and_channel_count(board):
    reply = board.handle(pdu(pdu_reg.ReadInputRegistersRequest(address=0, count=2)))
    assert reply.registers == [1, 4] and reply.dev_id == 1
    reply = board.handle(pdu(pdu_reg.ReadInputRegistersRequest(address=1, count=1)))
    assert reply.registers == [4]


def test_coil_write_echoes_and_pulses_then_fc01_fc02_show_it(board, clock):
    reply = board.handle(coil_write(2))
    assert (reply.function_code, reply.address, reply.bits) == (5, 2, [True])
    bits = board.handle(pdu(pdu_bit.ReadCoilsRequest(address=0, count=4))).bits
    assert bits[:4] == [False, False, True, False]
    clock.advance(0.2)
    bits = board.handle(pdu(pdu_bit.ReadDiscreteInputsRequest(address=0, count=4))).bits
    assert bits[:4] == [False, False, True, False]


def test_pulse_register_sets_the_pulse_length(board, clock):
    reply = board.handle(pdu(pdu_reg.WriteSingleRegisterRequest(address=0, registers=[40])))
    assert reply.registers == [40]
    assert board.handle(pdu(pdu_reg.ReadHoldingRegistersRequest(address=0, count=1))).registers == [
        40
    ]
    board.handle(coil_write(1))
    clock.advance(0.04)
    assert not board.coil(1) and board.pulses[-1].ms == 40


def test_write_multiple_coils_and_registers(board):
    reply = board.handle(
        pdu(pdu_bit.WriteMultipleCoilsRequest(address=1, bits=[True, False, True]))
    )
    assert (reply.function_code, reply.address, reply.count) == (15, 1, 3)
    assert [p.channel for p in board.pulses] == [1, 3]
    reply = board.handle(pdu(pdu_reg.WriteMultipleRegistersRequest(address=0, registers=[250])))
    assert reply.function_code == 16 and board.pulse_ms == 250


@pytest.mark.parametrize(
    ("request_pdu", "code"),
    [
        (pdu(pdu_bit.ReadDiscreteInputsRequest(address=0, count=5)), ExcCodes.ILLEGAL_ADDRESS),
        (pdu(pdu_bit.ReadCoilsRequest(address=4, count=1)), ExcCodes.ILLEGAL_ADDRESS),
        (coil_write(4), ExcCodes.ILLEGAL_ADDRESS),
        (pdu(pdu_reg.ReadHoldingRegistersRequest(address=1, count=1)), ExcCodes.ILLEGAL_ADDRESS),
        (pdu(pdu_reg.ReadInputRegistersRequest(address=0, count=3)), ExcCodes.ILLEGAL_ADDRESS),
        (bytes([5, 0, 1, 0x12, 0x34]), ExcCodes.ILLEGAL_VALUE),  # coil value not 0xFF00 / 0
        (bytes([2, 0, 0, 0, 0]), ExcCodes.ILLEGAL_VALUE),  # count 0
        (pdu(pdu_reg.WriteSingleRegisterRequest(address=0, registers=[0])), ExcCodes.ILLEGAL_VALUE),
        (bytes([8, 0, 0, 0x12, 0x34]), ExcCodes.ILLEGAL_FUNCTION),  # diagnostics: not ours
        (bytes([0x41, 1, 2]), ExcCodes.ILLEGAL_FUNCTION),  # unknown to Modbus itself
    ],
)
def test_refused_requests_get_the_right_exception(board, request_pdu, code):
    reply = board.handle(request_pdu)
    assert reply.isError()
    assert reply.function_code == request_pdu[0] | 0x80 and reply.exception_code == code
    assert not board.pulses


# -- the bus ----------------------------------------------------------------------------


@pytest.fixture
def bus(clock: Clock) -> SimBus:
    return SimBus.of(2, 4, open_delay_s=0.2, clock=clock, rng=random.Random(7))


def test_unknown_unit_gets_no_reply_at_all(bus):
    answer = bus.answer(b"raw", 9, coil_write(0))
    assert answer.reply is None
    assert bus.frames[-1].outcome == "not_mine" and not bus.pulses


def test_broadcast_write_applies_everywhere_and_gets_no_reply(bus):
    assert bus.answer(b"raw", 0, coil_write(3)).reply is None
    assert [(p.unit, p.channel) for p in bus.pulses] == [(1, 3), (2, 3)]
    assert bus.answer(b"raw", 0, pdu(pdu_bit.ReadCoilsRequest(address=0, count=1))).reply is None
    assert [f.outcome for f in bus.frames] == ["broadcast", "broadcast"]


def test_drop_loses_the_request_unless_applied_then_only_the_reply(bus):
    bus.drop_next()
    assert bus.answer(b"1", 1, coil_write(0)).reply is None
    assert not bus.pulses
    bus.drop_next(applied=True)
    assert bus.answer(b"2", 1, coil_write(0)).reply is None
    assert len(bus.pulses) == 1
    assert bus.answer(b"3", 1, coil_write(0)).reply is not None
    assert [f.outcome for f in bus.frames] == ["dropped", "reply_lost", "reply"]


def test_corrupt_slow_silent_and_unplugged(bus):
    bus.corrupt_next()
    bus.slow_s = 0.25
    answer = bus.answer(b"raw", 1, coil_write(0))
    assert answer.corrupt and answer.delay_s == 0.25 and len(bus.pulses) == 1
    assert not bus.answer(b"raw", 1, coil_write(0)).corrupt
    bus[2].silent = True
    assert bus.answer(b"raw", 2, coil_write(0)).reply is None
    bus.silent = True
    assert bus.answer(b"raw", 1, coil_write(0)).reply is None
    assert [f.outcome for f in bus.frames][-2:] == ["unplugged", "silent"]
    bus.clear_faults()
    assert bus.answer(b"raw", 2, coil_write(0)).reply is not None


def test_drop_rate_uses_the_injected_rng(bus):
    bus.drop_rate = 0.5
    replies = [bus.answer(b"raw", 1, coil_write(0)).reply for _ in range(200)]
    lost = sum(reply is None for reply in replies)
    assert 60 < lost < 140


def test_rtu_split_cuts_back_to_back_frames_on_pymodbus_sizes(bus):
    framer = FramerRTU(DecodePDU(is_server=False))
    first = framer.buildFrame(pdu_bit.WriteSingleCoilRequest(address=1, bits=[True], dev_id=0))
    second = framer.buildFrame(pdu_bit.ReadDiscreteInputsRequest(address=0, count=4, dev_id=1))
    server = RtuServer(bus, lambda data: None)
    assert server.split(first + second) == [first, second]
    assert server.decode(second) == (1, second[1:-2])
    damaged = second[:-1] + bytes([second[-1] ^ 1])
    assert server.split(first + damaged) == [first, damaged]
    assert server.decode(damaged) is None
