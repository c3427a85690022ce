"""`kiosk hardware scan` and `map` on a kerong-cu bus, as real processes.

The boards are `python -m firmware_bridge.kerong` in their own process on a
real pty; the scan opens the line itself with the daemon stopped and asks
the daemon (`hardware.scan`) while it runs. map opens a new board's locks
one by one through the daemon, as on a Modbus bus.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon_proc import CLI_TIMEOUT_S, DaemonProcess, kiosk, kiosk_json, pty_simulator

from kiosk.config.loader import load_config

#: The simulated boards' addresses; board 0 is configured, the others are new.
ADDRESSES = list(range(14))
#: Generous: every address of the line is asked and the boards share a busy machine.
WAIT_MS = "1000"


@pytest.fixture
def line() -> Iterator[str]:
    """Simulated KR-CU boards at addresses 0-13 (doors stay shut unless unlocked); its pty.

    Addresses 14 and 15 stay silent: each silent address costs the scan a whole wait,
    so the line is nearly full."""
    boards = ",".join(map(str, ADDRESSES))
    with pty_simulator("firmware_bridge.kerong", "--boards", boards, "--auto-close", "0") as path:
        yield path


def kerong_config(state: Path, port: str) -> Path:
    """Bus "cu" with board 0 (2 lockers) configured; board 5 is new."""
    key = state / "site-code.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    key.chmod(0o600)
    lines = [
        '[site]\nid = "kerong-01"',
        f"[ledger]\npath = {json.dumps(str(state / 'ledger.db'))}",
        f"[keys]\nsite_code_key_file = {json.dumps(str(key))}",
        f"[api]\nsocket = {json.dumps(str(state / 'kiosk.sock'))}",
        f'[[bus]]\nname = "cu"\nkind = "kerong-cu"\nport = {json.dumps(port)}\ntimeout_s = 1.0',
        '[[board]]\nbus = "cu"\nunit = 0\nprofile = "kerong-cu"\nchannels = 2',
    ]
    lines += [
        f'[[locker]]\nlabel = "A-{ch + 1}"\nsize = "S"\nbus = "cu"\nunit = 0\nchannel = {ch}'
        for ch in range(2)
    ]
    path = state / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def found(stdout: str) -> tuple[str, list[tuple[object, ...]]]:
    data = json.loads(stdout)
    keys = ("bus", "unit", "profile", "map_version", "channels", "presence_sensors", "configured")
    return data["via"], [tuple(b[k] for k in keys) for b in data["boards"]]


BOARDS = [("cu", a, "kerong-cu", None, 16, 16, a == 0) for a in ADDRESSES]


def test_scan_with_the_daemon_stopped_opens_the_line_and_lists_its_boards(
    state: Path, line: str
) -> None:
    config = kerong_config(state, line)
    done = kiosk(config, "hardware", "scan", "--bus", "cu", "--timeout-ms", WAIT_MS, "--json")
    assert done.returncode == 0, done.stderr
    assert found(done.stdout) == ("bus", BOARDS)
    table = kiosk(config, "hardware", "scan", "--timeout-ms", WAIT_MS)  # every bus: cu too
    assert table.returncode == 0, table.stderr
    assert "Kerong board addresses 0-15" in table.stdout
    rows = [r.split() for r in table.stdout.splitlines()]
    assert ["cu", "5", "kerong-cu", "-", "16", "16", "new"] in rows


def test_scan_with_the_daemon_running_asks_it(state: Path, line: str) -> None:
    config = kerong_config(state, line)
    with DaemonProcess(config) as daemon:
        done = kiosk(config, "hardware", "scan", "--bus", "cu", "--timeout-ms", WAIT_MS, "--json")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert found(done.stdout) == ("daemon", BOARDS)
        # Read only: the configured lockers' doors are shut still (an unlock leaves one open).
        doors = kiosk(config, "doors", "--json")
        assert doors.returncode == 0, doors.stderr
        assert "open" not in {d["door"] for d in json.loads(doors.stdout)["doors"]}
        assert daemon.terminate() == 0, daemon.log()


#: IR sensors (asked first): no; channel 0: K-1, M, column 3, row 1; channel 1: K-2, S;
#: channel 2 (opened, as each channel is before its question): stop.
ANSWERS = "n\nK-1\nM\n3\n1\nK-2\ns\n\n\nstop\n"


def door_hooks(port: str, address: int) -> set[int]:
    """The locks of board `address` whose hook reads closed (the daemon is stopped)."""
    from firmware_bridge.kerong import KerongBusSettings
    from firmware_bridge.kerong.bus import KerongBus

    async def read() -> set[int]:
        bus = KerongBus(KerongBusSettings("cu", port, 19200, 1.0, 2))
        await bus.connect()
        try:
            status = await bus.status(address)
        finally:
            await bus.close()
        return {lock for lock in range(16) if status.closed(lock)}

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("bus", "ir"), [(("--bus", "cu"), False), ((), True)], ids=["named", "the-only-bus-with-ir"]
)
def test_map_walks_a_new_kerong_board_through_the_daemon(
    state: Path, line: str, bus: tuple[str, ...], ir: bool
) -> None:
    config = kerong_config(state, line)
    out = state / "new.toml"
    command = [sys.executable, "-m", "kiosk", "--config", str(config), "hardware", "map"]
    with DaemonProcess(config) as daemon:
        done = subprocess.run(
            [*command, "--unit", "5", "--out", str(out), *bus],
            input=("y" if ir else "n") + ANSWERS[1:],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S * 2,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr + daemon.log()
        code, audit = kiosk_json(config, "audit", "tail", "-n", "50")
        assert code == 0
        assert daemon.terminate() == 0, daemon.log()
    assert done.stdout.count("its door sensor reads open") == 3, done.stdout
    # The line carried exactly the three unlocks, locks 0-2 of board 5 (doors stay open here).
    assert door_hooks(line, 5) == set(range(3, 16))
    assert door_hooks(line, 0) == set(range(16))
    opened = [
        (
            row["subject"],
            row["detail"] if isinstance(row["detail"], dict) else json.loads(row["detail"]),
        )
        for row in audit["rows"]
        if row["action"] == "hardware.map_open"
    ]
    assert opened == [
        ("cu/5/0", {"bus": "cu", "unit": 5, "channel": 0}),
        ("cu/5/1", {"bus": "cu", "unit": 5, "channel": 1}),
        ("cu/5/2", {"bus": "cu", "unit": 5, "channel": 2}),
    ]
    check = kiosk(config, "config", "check", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    new = load_config(out)
    assert [(b.unit, b.profile, b.channels, b.ir_sensors) for b in new.boards] == [
        (0, "kerong-cu", 2, False),
        (5, "kerong-cu", 16, ir),
    ]
    added = [
        (lk.label, lk.size.value, lk.bus, lk.unit, lk.channel, lk.column, lk.row)
        for lk in new.lockers
        if lk.unit == 5
    ]
    assert added == [("K-1", "M", "cu", 5, 0, 3, 1), ("K-2", "S", "cu", 5, 1, None, None)]


def test_map_refuses_a_modbus_profile_or_an_address_past_15_on_a_kerong_bus(state: Path) -> None:
    config = kerong_config(state, "/dev/null")
    out = state / "new.toml"
    for args in (("--unit", "16"), ("--unit", "5", "--profile", "kiosk-v1")):
        done = kiosk(config, "hardware", "map", *args, "--out", str(out))
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
        assert "kerong" in done.stderr.lower()
    assert not out.exists()
