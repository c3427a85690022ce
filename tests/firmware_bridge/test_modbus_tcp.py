"""ModbusLockBank over Modbus TCP (several units at one address) and build_lock_bank wiring."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_bridge.bank import BoardUnavailable, ChannelRef, DoorState
from firmware_bridge.modbus import (
    BoardNotAnswering,
    BoardSpec,
    BusSettings,
    BusUnavailable,
    ModbusBus,
    ModbusLockBank,
)
from firmware_bridge.multibank import MultiBank
from firmware_bridge.simboard import SimBus, SimTcpServer, serve_pty, serve_tcp
from kiosk.config import load_config
from kiosk.domain.errors import ConfigError
from kiosk.wiring import build_lock_bank

BUS = "gw"
#: A reply is awaited this long: far more than a loopback answer takes on a loaded machine,
#: so a test that expects answers never sees a timeout it did not make.
TIMEOUT_S = 1.0
#: A test that waits out many silences (a dead unit polled again and again) waits this long.
SILENCE_TIMEOUT_S = 0.25


@pytest.fixture
async def server() -> AsyncIterator[SimTcpServer]:
    sim = SimBus.of(units=3, channels=4, open_delay_s=0.01)
    tcp = await serve_tcp(sim, "127.0.0.1", 0)
    yield tcp
    await tcp.close()


async def started_bank(server: SimTcpServer, timeout_s: float = TIMEOUT_S) -> ModbusLockBank:
    settings = BusSettings(BUS, "tcp", host=server.host, port=server.port, timeout_s=timeout_s)
    specs = [BoardSpec(BUS, unit, channels=4, pulse_ms=300) for unit in (1, 2, 3)]
    lock_bank = ModbusLockBank([ModbusBus(settings)], specs)
    await lock_bank.start()
    return lock_bank


@pytest.fixture
async def bank(server: SimTcpServer) -> AsyncIterator[ModbusLockBank]:
    lock_bank = await started_bank(server)
    yield lock_bank
    await lock_bank.close()


async def wait_open(bank: ModbusLockBank | MultiBank, ref: ChannelRef) -> None:
    deadline = asyncio.get_running_loop().time() + 1.0
    while (await bank.read_doors())[ref] is not DoorState.OPEN:
        assert asyncio.get_running_loop().time() < deadline, f"{ref} never read open"
        await asyncio.sleep(0.01)


async def test_several_units_behind_one_tcp_address(
    server: SimTcpServer, bank: ModbusLockBank
) -> None:
    assert [server.bus[u].pulse_ms for u in (1, 2, 3)] == [300, 300, 300]
    before = len(server.bus.frames)
    doors = await bank.read_doors()
    assert set(doors.values()) == {DoorState.SHUT} and len(doors) == 12
    assert [(f.unit, f.function_code) for f in list(server.bus.frames)[before:]] == [
        (1, 2),
        (2, 2),
        (3, 2),
    ]
    await bank.unlock(ChannelRef(BUS, 3, 1))
    await wait_open(bank, ChannelRef(BUS, 3, 1))
    assert server.bus[3].is_open(1) and not server.bus[1].is_open(1)


async def test_a_silent_unit_does_not_cost_the_others_their_tcp_link(
    server: SimTcpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="firmware_bridge")
    bank = await started_bank(server, SILENCE_TIMEOUT_S)
    server.bus[2].silent = True
    try:
        for _ in range(6):  # more failed requests than pymodbus's default disconnect limit
            doors = await bank.read_doors()
            assert doors[ChannelRef(BUS, 2, 0)] is DoorState.UNKNOWN
            assert doors[ChannelRef(BUS, 1, 0)] is DoorState.SHUT
            assert doors[ChannelRef(BUS, 3, 0)] is DoorState.SHUT
        with pytest.raises(BoardNotAnswering) as info:
            await bank.unlock(ChannelRef(BUS, 2, 0))
        assert "gateway" in info.value.fix
        offline = [r for r in caplog.records if "board 2 is offline" in r.getMessage()]
        assert len(offline) == 1
        server.bus[2].silent = False
        await bank.read_doors()
        assert [i.online for i in bank.describe()] == [True, True, True]
    finally:
        await bank.close()


async def test_a_mangled_tcp_reply_is_a_bad_frame_then_retried(
    server: SimTcpServer, bank: ModbusLockBank
) -> None:
    server.bus.corrupt_next()
    doors = await bank.read_doors()
    assert set(doors.values()) == {DoorState.SHUT}
    counters = bank.describe()[0].counters
    assert (counters["bad_frames"], counters["retries"]) == (1, 1)


async def test_a_lost_gateway_reads_unknown_then_the_link_comes_back_by_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="firmware_bridge")
    sim = SimBus.of(units=2, channels=4)
    tcp = await serve_tcp(sim, "127.0.0.1", 0)
    port = tcp.port
    settings = BusSettings(BUS, "tcp", host="127.0.0.1", port=port, timeout_s=TIMEOUT_S)
    lock_bank = ModbusLockBank(
        [ModbusBus(settings)], [BoardSpec(BUS, u, channels=4) for u in (1, 2)]
    )
    await lock_bank.start()
    try:
        await tcp.close()  # the gateway reboots
        for _ in range(3):
            assert set((await lock_bank.read_doors()).values()) == {DoorState.UNKNOWN}
        tcp = await serve_tcp(sim, "127.0.0.1", port)
        deadline = asyncio.get_running_loop().time() + 3.0
        while set((await lock_bank.read_doors()).values()) != {DoorState.SHUT}:
            assert asyncio.get_running_loop().time() < deadline, "the link never came back"
            await asyncio.sleep(0.05)
        logged = [r.getMessage() for r in caplog.records]
        for unit in (1, 2):
            assert sum(f"board {unit} is offline" in m for m in logged) == 1
            assert sum(f"board {unit} is back online" in m for m in logged) == 1
        assert all(i.counters["errors"] >= 3 for i in lock_bank.describe())
    finally:
        await lock_bank.close()
        await tcp.close()


async def test_an_unreachable_gateway_names_the_address() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = BusSettings(BUS, "tcp", host="127.0.0.1", port=port, timeout_s=0.2)
    lock_bank = ModbusLockBank([ModbusBus(settings)], [BoardSpec(BUS, 1, channels=4)])
    with pytest.raises(BusUnavailable, match=f"127.0.0.1:{port}") as info:
        await lock_bank.start()
    assert isinstance(info.value, BoardUnavailable)
    assert "gateway" in info.value.fix


def write_config(tmp_path: Path, buses: str, boards: str, lockers: str) -> Path:
    key = tmp_path / "site.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[site]\nid = "t-01"\n[ledger]\npath = "{tmp_path / "ledger.db"}"\n'
        f'[keys]\nsite_code_key_file = "{key}"\n[api]\nsocket = "{tmp_path / "k.sock"}"\n'
        + buses
        + boards
        + lockers
    )
    return path


async def test_build_lock_bank_wires_rtu_and_tcp_buses(
    tmp_path: Path, server: SimTcpServer
) -> None:
    rtu_sim = SimBus.of(units=1, channels=2, open_delay_s=0.01)
    link = await serve_pty(rtu_sim)
    buses = (
        f'[[bus]]\nname = "rs485"\nkind = "modbus-rtu"\nport = "{link.path}"\n'
        f"baudrate = 115200\ntimeout_s = {TIMEOUT_S}\n"
        f'[[bus]]\nname = "gw"\nkind = "modbus-tcp"\nhost = "{server.host}"\n'
        f"port = {server.port}\ntimeout_s = {TIMEOUT_S}\n"
    )
    boards = (
        '[[board]]\nbus = "rs485"\nunit = 1\nchannels = 2\npulse_ms = 200\n'
        '[[board]]\nbus = "gw"\nunit = 2\nchannels = 4\n'
    )
    lockers = (
        '[[locker]]\nlabel = "A-1"\nsize = "S"\nbus = "rs485"\nunit = 1\nchannel = 0\n'
        '[[locker]]\nlabel = "B-1"\nsize = "M"\nbus = "gw"\nunit = 2\nchannel = 3\n'
    )
    config = load_config(write_config(tmp_path, buses, boards, lockers))
    lock_bank = build_lock_bank(config)
    assert isinstance(lock_bank, MultiBank)
    assert all(isinstance(b, ModbusLockBank) for b in lock_bank.banks.values())
    await lock_bank.start()
    try:
        assert rtu_sim[1].pulse_ms == 200
        doors = await lock_bank.read_doors()
        assert len(doors) == 6 and set(doors.values()) == {DoorState.SHUT}
        await lock_bank.unlock(ChannelRef("rs485", 1, 0))
        await lock_bank.unlock(ChannelRef("gw", 2, 3))
        await wait_open(lock_bank, ChannelRef("rs485", 1, 0))
        await wait_open(lock_bank, ChannelRef("gw", 2, 3))
        assert {(i.bus, i.unit, i.kind) for i in lock_bank.describe()} == {
            ("rs485", 1, "kiosk-v1"),
            ("gw", 2, "kiosk-v1"),
        }
    finally:
        await lock_bank.close()
        await link.stop()


def test_build_lock_bank_refuses_a_board_its_profile_cannot_be(tmp_path: Path) -> None:
    buses = '[[bus]]\nname = "rs485"\nkind = "modbus-rtu"\nport = "/dev/ttyUSB0"\n'
    boards = '[[board]]\nbus = "rs485"\nunit = 1\nprofile = "waveshare-relay-d"\nchannels = 16\n'
    lockers = '[[locker]]\nlabel = "A-1"\nsize = "S"\nbus = "rs485"\nunit = 1\nchannel = 0\n'
    config = load_config(write_config(tmp_path, buses, boards, lockers))
    with pytest.raises(ConfigError, match=r"1\.\.8 channels"):
        build_lock_bank(config)
