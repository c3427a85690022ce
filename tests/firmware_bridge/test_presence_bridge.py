"""Register map v2 (parcel-presence sensors): the simulated board over a real pty, the Modbus
bank's one extra FC02 a poll, v1 boards unchanged, and gpio presence_pins on MockFactory pins."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from gpiozero.pins.mock import MockFactory
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType
from support.broker import free_port

from firmware_bridge.bank import ChannelRef, PresenceBank, last_presence
from firmware_bridge.gpio import GpioChannel, GpioLockBank
from firmware_bridge.modbus import BoardSpec
from firmware_bridge.modbus.errors import WrongRegisterMap
from firmware_bridge.modbus.profiles import KioskV1Profile, ReadBits, ReadRegisters
from firmware_bridge.simboard import SimBus, serve_pty
from firmware_bridge.simboard.bank import SimulatedLockBank
from firmware_bridge.simboard.cli import main_simulate

V1 = KioskV1Profile()

#: Every request here expects its reply: far longer than the pty takes on a loaded machine.
TIMEOUT_S = 1.0


@pytest.fixture
async def client_v2() -> AsyncIterator[tuple[SimBus, AsyncModbusSerialClient]]:
    bus = SimBus.of(2, 8, map_version=2, presence=True)
    link = await serve_pty(bus)
    client = AsyncModbusSerialClient(
        link.path, framer=FramerType.RTU, baudrate=115200, timeout=TIMEOUT_S, retries=1
    )
    assert await client.connect()
    yield bus, client
    client.close()
    await link.stop()


async def test_v2_board_says_version_2_and_its_presence_sensors_over_rtu(client_v2):
    bus, client = client_v2
    reply = await client.read_input_registers(0, count=3, device_id=2)
    assert reply.registers == [2, 8, 8]
    bus[2].put(3)
    bits = await client.read_discrete_inputs(1000, count=8, device_id=2)
    assert bits.bits[:8] == [False, False, False, True, False, False, False, False]
    doors = await client.read_discrete_inputs(0, count=8, device_id=2)
    assert doors.bits[:8] == [False] * 8  # the door inputs are as v1 has them


async def test_v1_board_has_no_register_2_and_no_presence_inputs():
    bus = SimBus.of(1, 8)
    link = await serve_pty(bus)
    client = AsyncModbusSerialClient(
        link.path, framer=FramerType.RTU, baudrate=115200, timeout=TIMEOUT_S, retries=0
    )
    assert await client.connect()
    try:
        assert (await client.read_input_registers(0, count=2, device_id=1)).registers == [1, 8]
        assert (await client.read_input_registers(2, count=1, device_id=1)).isError()
        assert (await client.read_discrete_inputs(1000, count=8, device_id=1)).isError()
    finally:
        client.close()
        await link.stop()


def test_profile_asks_a_v2_board_for_its_sensor_count_and_checks_it():
    assert V1.presence_count([1, 16]) is None
    assert V1.presence_count([2, 16]) == ReadRegisters(4, 2, 1)
    assert V1.check_presence([16], [2, 16], "") == 16
    assert V1.check_presence([0], [2, 16], "") == 0
    with pytest.raises(WrongRegisterMap, match="0 or one per channel"):
        V1.check_presence([5], [2, 16], "")
    assert V1.read_presence(4) == ReadBits(2, 1000, 4)
    assert V1.decode_presence([True, False, True, False, False, False, False, False], 3) == [
        True,
        False,
        True,
    ]


def _sim_bank(presence: bool) -> SimulatedLockBank:
    specs = [BoardSpec("rs485", unit, "kiosk-v1", 4, 100, 500) for unit in (1, 2)]
    return SimulatedLockBank("rs485", specs, door_close_s=0, presence=presence)


def _fc02_requests(bank: SimulatedLockBank) -> list[bytes]:
    return [f.raw for f in bank.sim.frames if f.function_code == 2]


async def test_modbus_bank_reads_presence_with_the_doors_one_more_fc02_per_board():
    bank = _sim_bank(presence=True)
    await bank.start()
    try:
        assert isinstance(bank, PresenceBank)
        assert [b.presence_sensors for b in bank.describe()] == [4, 4]
        bank.sim[2].put(1)
        before = len(_fc02_requests(bank))
        await bank.read_doors()
        assert len(_fc02_requests(bank)) - before == 4  # doors + presence, two boards
        found = bank.presence()
        assert found[ChannelRef("rs485", 2, 1)] is True
        assert found[ChannelRef("rs485", 1, 1)] is False
        bank.sim[2].take(1)
        await bank.read_doors({("rs485", 2)})
        assert bank.presence()[ChannelRef("rs485", 2, 1)] is False
    finally:
        await bank.close()


async def test_v1_boards_work_unchanged_no_presence_request_and_presence_null():
    bank = _sim_bank(presence=False)
    await bank.start()
    try:
        before = len(_fc02_requests(bank))
        doors = await bank.read_doors()
        assert len(doors) == 8
        assert len(_fc02_requests(bank)) - before == 2  # one FC02 per board, as in v1
        assert set(bank.presence().values()) == {None}
        assert [b.presence_sensors for b in bank.describe()] == [0, 0]
        # Identification asked input registers 0..1 only, never register 2.
        fc04 = [f.raw for f in bank.sim.frames if f.function_code == 4]
        assert fc04 and all(raw[2:6] == bytes([0, 0, 0, 2]) for raw in fc04)
    finally:
        await bank.close()


async def test_gpio_presence_pins_read_low_as_occupied():
    factory = MockFactory()
    bank = GpioLockBank(
        "gpio",
        [GpioChannel(0, 2, 14, 24), GpioChannel(1, 3, 15, 25)],
        60,
        500,
        debounce_ms=0,
        pin_factory=factory,
    )
    await bank.start()
    try:
        await bank.read_doors()
        assert last_presence(bank) == {
            ChannelRef("gpio", 1, 0): False,
            ChannelRef("gpio", 1, 1): False,
        }
        factory.pin(25).drive_low()  # the IR sensor sees a parcel in channel 1
        await bank.read_doors()
        assert bank.presence()[ChannelRef("gpio", 1, 1)] is True
        assert bank.describe()[0].presence_sensors == 2
    finally:
        await bank.close()
        factory.reset()


async def test_gpio_without_presence_pins_reports_null():
    factory = MockFactory()
    bank = GpioLockBank("gpio", [GpioChannel(0, 2, 14)], 60, 500, pin_factory=factory)
    await bank.start()
    try:
        await bank.read_doors()
        assert bank.presence() == {ChannelRef("gpio", 1, 0): None}
    finally:
        await bank.close()
        factory.reset()


# -- kiosk simulate board --presence / --map-version (a real process) ----------------------


def _simulator(*argv: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_bridge.simboard", "--pty", "--channels", "4", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize(
    ("argv", "registers", "presence_answers"),
    [
        (["--presence"], [2, 4, 4], True),
        (["--map-version", "2"], [2, 4, 0], False),
        ([], [1, 4], False),
    ],
)
async def test_cli_serves_the_map_version_asked(argv, registers, presence_answers):
    proc, path = _simulator(*argv)
    try:
        assert path.startswith("/dev/pts/"), proc.stderr.read() if proc.stderr else ""
        client = AsyncModbusSerialClient(path, baudrate=115200, timeout=1, retries=0)
        try:
            assert await client.connect()
            reply = await client.read_input_registers(0, count=len(registers), device_id=1)
            assert reply.registers == registers
            seen = await client.read_discrete_inputs(1000, count=4, device_id=1)
            assert seen.isError() is not presence_answers
            if presence_answers:
                assert seen.bits[:4] == [False] * 4  # nothing inside yet
        finally:
            client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


def test_cli_presence_needs_map_v2(capsys):
    with pytest.raises(SystemExit) as stop:
        main_simulate(["--pty", "--presence", "--map-version", "1"])
    assert stop.value.code == 2
    assert "--presence needs --map-version 2" in capsys.readouterr().err


async def test_kiosk_simulate_board_takes_presence_and_map_version_as_documented():
    """`kiosk simulate board` (the documented command, not the module) passes them through."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "kiosk", "simulate", "board"),
            *("--tcp", f"127.0.0.1:{port}", "--channels", "6", "--presence", "--map-version", "2"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address == f"127.0.0.1:{port}", proc.communicate(timeout=30)[1]
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
        try:
            assert await client.connect()
            reply = await client.read_input_registers(0, count=3, device_id=1)
            assert reply.registers == [2, 6, 6]  # map v2, 6 channels, 6 presence sensors
            seen = await client.read_discrete_inputs(1000, count=6, device_id=1)
            assert not seen.isError()
            assert seen.bits[:6] == [False] * 6  # every compartment empty
            beyond = await client.read_discrete_inputs(1000, count=7, device_id=1)
            assert beyond.isError()  # exactly one sensor per channel
        finally:
            client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_kiosk_simulate_board_help_names_both_map_versions():
    shown = subprocess.run(
        [sys.executable, "-m", "kiosk", "simulate", "board", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    assert "--presence" in shown.stdout and "--map-version" in shown.stdout
    assert "(register map v1)" not in shown.stdout


async def test_a_silent_board_reports_presence_null_not_its_last_reading():
    bank = _sim_bank(presence=True)
    await bank.start()
    try:
        bank.sim[1].put(0)
        await bank.read_doors()
        assert bank.presence()[ChannelRef("rs485", 1, 0)] is True
        bank.sim[1].silent = True
        await bank.read_doors({("rs485", 1)})
        assert bank.presence()[ChannelRef("rs485", 1, 0)] is None
        bank.sim[1].silent = False
        await bank.read_doors({("rs485", 1)})
        assert bank.presence()[ChannelRef("rs485", 1, 0)] is True
    finally:
        await bank.close()
