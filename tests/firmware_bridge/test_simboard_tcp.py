"""The simulated board as Modbus TCP (real AsyncModbusTcpClient), and `kiosk simulate board`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from firmware_bridge.simboard import SimBus, SimTcpServer, serve_tcp
from firmware_bridge.simboard.cli import main_simulate

#: A reply is awaited this long: far more than a loopback answer takes on a loaded machine,
#: so a reply (a retry's, a slow board's) never races it; a silence waits it out.
TIMEOUT_S = 1.0


@pytest.fixture
async def tcp() -> AsyncIterator[tuple[SimBus, SimTcpServer, AsyncModbusTcpClient]]:
    bus = SimBus.of(3, 16, pulse_ms_default=50, open_delay_s=0.01)
    server = await serve_tcp(bus, "127.0.0.1", 0)
    client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=TIMEOUT_S, retries=1)
    assert await client.connect()
    yield bus, server, client
    client.close()
    await server.close()


async def test_several_units_behind_one_tcp_port(tcp):
    bus, server, client = tcp
    assert server.address == f"127.0.0.1:{server.port}" and server.port > 0
    for unit in (1, 2, 3):
        reply = await client.read_input_registers(0, count=2, device_id=unit)
        assert reply.registers == [1, 16] and reply.dev_id == unit
    assert not (await client.write_coil(9, True, device_id=2)).isError()
    await asyncio.sleep(0.03)
    bits = (await client.read_discrete_inputs(0, count=16, device_id=2)).bits
    assert [ch for ch, on in enumerate(bits) if on] == [9]
    assert not any((await client.read_discrete_inputs(0, count=16, device_id=3)).bits)
    assert [(p.unit, p.channel) for p in bus.pulses] == [(2, 9)]


async def test_tcp_unknown_unit_is_silent_and_exceptions_carry_through(tcp):
    bus, _, client = tcp
    with pytest.raises(ModbusIOException):
        await client.read_coils(0, count=1, device_id=99)
    assert {f.outcome for f in bus.frames} == {"not_mine"}
    reply = await client.read_coils(0, count=17, device_id=1)
    assert reply.isError() and reply.exception_code == 2


async def test_tcp_faults_corrupt_drop_slow(tcp):
    bus, _, client = tcp
    bus.corrupt_next()  # fails the MBAP check: the client retries and the retry is answered
    reply = await client.read_input_registers(1, count=1, device_id=1)
    assert reply.registers == [16] and reply.retries == 1
    bus.drop_next(2)
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(1, count=1, device_id=1)
    bus.slow_s = 0.05
    start = time.monotonic()
    assert (await client.read_input_registers(1, count=1, device_id=3)).registers == [16]
    assert time.monotonic() - start >= 0.05
    assert [f.outcome for f in bus.frames] == [
        "corrupted",
        "reply",
        "dropped",
        "dropped",
        "reply",
    ]


async def test_closing_the_server_ends_open_connections():
    bus = SimBus.of(1, 4)
    server = await serve_tcp(bus)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"\x00\x01\x00\x00\x00\x06\x01\x04\x00\x00\x00\x02")  # FC04 in MBAP, unit 1
    assert await reader.readexactly(13) == b"\x00\x01\x00\x00\x00\x07\x01\x04\x04\x00\x01\x00\x04"
    await server.close()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


# -- kiosk simulate board ---------------------------------------------------------------


@pytest.fixture
def simulator(request) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_bridge.simboard", *request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline().strip()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


@pytest.mark.parametrize("simulator", [["--pty", "--units", "2", "--channels", "4"]], indirect=True)
async def test_cli_prints_a_pty_path_serves_it_and_stops_on_sigterm(simulator):
    proc, path = simulator
    assert path.startswith("/dev/pts/")
    client = AsyncModbusSerialClient(path, baudrate=115200, timeout=1, retries=0)
    try:
        assert await client.connect()
        assert (await client.read_input_registers(0, count=2, device_id=2)).registers == [1, 4]
    finally:
        client.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


@pytest.mark.parametrize("simulator", [["--tcp", "127.0.0.1:0", "--units", "3"]], indirect=True)
async def test_cli_prints_a_tcp_address_and_stops_on_sigint(simulator):
    proc, address = simulator
    host, _, port = address.rpartition(":")
    client = AsyncModbusTcpClient(host, port=int(port), timeout=1, retries=0)
    try:
        assert await client.connect()
        assert (await client.read_input_registers(0, count=2, device_id=3)).registers == [1, 16]
    finally:
        client.close()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=5) == 0


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--pty", "--tcp", "h:1"],
        ["--tcp", "nohost"],
        ["--pty", "--channels", "65"],
        ["--pty", "--baudrate", "12345"],
        ["--tcp", "127.0.0.1:0", "--link", "/tmp/x"],
    ],
)
def test_cli_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main_simulate(argv)
    assert stop.value.code == 2
    assert "kiosk simulate board" in capsys.readouterr().err
