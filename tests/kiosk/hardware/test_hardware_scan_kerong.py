"""`kiosk hardware scan` and `map` on a kerong-cu bus, as real processes.

The boards are `python -m firmware_bridge.kerong` in their own process on a
real pty; the scan opens the line itself with the daemon stopped and asks
the daemon (`hardware.scan`) while it runs. map refuses the bus in one line.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon_proc import CLI_TIMEOUT_S, DaemonProcess, kiosk

#: The simulated boards' addresses; board 0 is configured, the others are new.
ADDRESSES = list(range(14))
#: Generous: every address of the line is asked and the boards share a busy machine.
WAIT_MS = "1000"


@pytest.fixture
def line() -> Iterator[str]:
    """Simulated KR-CU boards at addresses 0-13 (doors stay shut unless unlocked); its pty.

    Addresses 14 and 15 stay silent: each silent address costs the scan a whole wait,
    so the line is nearly full."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_bridge.kerong",
            "--boards",
            ",".join(map(str, ADDRESSES)),
            "--auto-close",
            "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), f"the simulator printed {path!r}"
        yield path
    finally:
        proc.kill()
        proc.wait(CLI_TIMEOUT_S)


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


@pytest.mark.parametrize("bus", [("--bus", "cu"), ()], ids=["named", "the-only-bus"])
def test_map_refuses_a_kerong_bus_in_one_line(state: Path, bus: tuple[str, ...]) -> None:
    config = kerong_config(state, "/dev/null")
    out = state / "new.toml"
    done = kiosk(config, "hardware", "map", "--unit", "5", "--out", str(out), *bus)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert "bus 'cu' is a kerong-cu bus" in done.stderr
    assert "[[locker]] entries by hand" in done.stderr
    assert not out.exists()
