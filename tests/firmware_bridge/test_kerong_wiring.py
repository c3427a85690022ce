"""build_lock_bank with a kerong-cu bus on the simulated KR-CU line's pty, and the simulator
as the process a person runs `kiosk run` against."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path

import pytest

from firmware_bridge.bank import BoardUnavailable, ChannelRef, DoorState, last_presence
from firmware_bridge.kerong import KerongBoardSpec, KerongBus, KerongBusSettings, KerongLockBank
from firmware_bridge.kerong.sim import SimKerongBoard, SimKerongLine, serve_kerong_pty
from firmware_bridge.multibank import MultiBank
from kiosk.config import load_config
from kiosk.wiring import build_lock_bank


def _config(tmp_path: Path, port: str, baudrate: str = "") -> Path:
    key = tmp_path / "site.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[site]\nid = "t-01"\n[ledger]\npath = "{tmp_path / "ledger.db"}"\n'
        f'[keys]\nsite_code_key_file = "{key}"\n[api]\nsocket = "{tmp_path / "k.sock"}"\n'
        f'[[bus]]\nname = "cu"\nkind = "kerong-cu"\nport = "{port}"\ntimeout_s = 0.3\n'
        f"retries = 1\n{baudrate}"
        '[[board]]\nbus = "cu"\nunit = 0\nprofile = "kerong-cu"\nchannels = 16\n'
        "ir_sensors = true\n"
        '[[board]]\nbus = "cu"\nunit = 3\nprofile = "kerong-cu"\nchannels = 12\n'
        '[[locker]]\nlabel = "A-1"\nsize = "S"\nbus = "cu"\nunit = 0\nchannel = 0\n'
        '[[locker]]\nlabel = "B-12"\nsize = "M"\nbus = "cu"\nunit = 3\nchannel = 11\n'
    )
    return path


async def test_the_factory_builds_a_kerong_bank_that_drives_the_simulated_line(tmp_path):
    line = SimKerongLine([SimKerongBoard(0, occupied={0}), SimKerongBoard(3, locks=12)])
    link = await serve_kerong_pty(line)  # 19200 baud: the config gives none, so 19200 it is
    seen: list[tuple[str, int, bool]] = []
    config = load_config(_config(tmp_path, link.path))
    bank = build_lock_bank(config, bus_observer=lambda b, u, _s, ok: seen.append((b, u, ok)))
    assert isinstance(bank, MultiBank) and isinstance(bank.banks["cu"], KerongLockBank)
    await bank.start()
    try:
        await bank.unlock(ChannelRef("cu", 3, 11))
        assert line.boards[3].unlocks == [11]
        doors = await bank.read_doors()
        assert len(doors) == 28
        assert doors[ChannelRef("cu", 3, 11)] is DoorState.OPEN
        assert doors[ChannelRef("cu", 0, 0)] is DoorState.SHUT
        presence = last_presence(bank)
        assert presence[ChannelRef("cu", 0, 0)] is True
        assert presence[ChannelRef("cu", 3, 0)] is None  # no IR sensors on board 3
        assert {(i.unit, i.kind, i.online) for i in bank.describe()} == {
            (0, "kerong-cu", True),
            (3, "kerong-cu", True),
        }
        assert ("cu", 3, True) in seen and all(ok for _, _, ok in seen)
    finally:
        await bank.close()
        await link.stop()


async def test_a_line_at_the_wrong_baud_rate_does_not_start_and_says_why(tmp_path):
    line = SimKerongLine([SimKerongBoard(0)])
    link = await serve_kerong_pty(line)
    config = load_config(_config(tmp_path, link.path, "baudrate = 9600\n"))
    bank = build_lock_bank(config)
    try:
        with pytest.raises(BoardUnavailable) as caught:
            await bank.start()
        assert "no Kerong board answered at address 0, 3" in str(caught.value)
        assert "19200 from the factory" in caught.value.fix
    finally:
        await bank.close()
        await link.stop()


async def test_the_simulator_runs_as_a_process_for_kiosk_run(tmp_path):
    link = tmp_path / "ttyKERONG"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "firmware_bridge.kerong",
        "--boards",
        "0,3",
        "--locks",
        "12",
        "--occupied",
        "1",
        "--auto-close",
        "0.2",
        "--link",
        str(link),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        path = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        assert path == str(link)
        bus = KerongBus(KerongBusSettings("cu", path, timeout_s=0.5, retries=2))
        bank = KerongLockBank(bus, [KerongBoardSpec("cu", 3, 12, ir_sensors=True)])
        await bank.start()
        try:
            await bank.unlock(ChannelRef("cu", 3, 5))
            assert last_presence(bank)[ChannelRef("cu", 3, 1)] is True
            deadline = asyncio.get_running_loop().time() + 60
            while (await bank.read_doors())[ChannelRef("cu", 3, 5)] is not DoorState.SHUT:
                assert asyncio.get_running_loop().time() < deadline, "the door never shut"
                await asyncio.sleep(0.05)
        finally:
            await bank.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    assert not link.exists()
