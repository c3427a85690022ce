"""`kiosk run` on a kerong-cu bus: the real daemon drives simulated KR-CU boards on a pty.

The boards are `python -m firmware_bridge.kerong` in their own process (doors
shut themselves a moment after an unlock); the daemon is a real `kiosk run`,
driven by `kiosk` commands in their own processes.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon_proc import (
    DaemonProcess,
    kiosk,
    kiosk_json,
    one_error_line,
    pty_simulator,
    run_to_end,
    short_dir,
    wait_until,
)

EX_UNAVAILABLE = 69


@pytest.fixture
def line() -> Iterator[str]:
    """Simulated KR-CU board 0 with 2 locks, lock 1's IR sensor seeing a parcel; its pty."""
    args = ["--boards", "0", "--locks", "2", "--auto-close", "0.5", "--occupied", "1"]
    with pty_simulator("firmware_bridge.kerong", *args) as path:
        yield path


def kerong_config(state: Path, port: str, unit: int = 0) -> Path:
    key = state / "site-code.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    lines = [
        "[site]",
        'id = "kerong-01"',
        "[ledger]",
        f"path = {json.dumps(str(state / 'ledger.db'))}",
        "[keys]",
        f"site_code_key_file = {json.dumps(str(key))}",
        "[api]",
        f"socket = {json.dumps(str(state / 'kiosk.sock'))}",
        "[[bus]]",
        'name = "cu"',
        'kind = "kerong-cu"',
        f"port = {json.dumps(port)}",
        "timeout_s = 1.0",  # generous: the machine is shared
        "poll_ms = 50",
        "[[board]]",
        'bus = "cu"',
        f"unit = {unit}",
        'profile = "kerong-cu"',
        "channels = 2",
        "ir_sensors = true",
    ]
    for channel in range(2):
        lines += ["[[locker]]", f'label = "A-{channel + 1}"', 'size = "S"', 'bus = "cu"']
        lines += [f"unit = {unit}", f"channel = {channel}"]
    path = state / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kiosk_run_opens_a_locker_on_a_kerong_board(tmp_path, line):
    config = kerong_config(short_dir(tmp_path), line)
    with DaemonProcess(config) as daemon:
        opened = kiosk(config, "open", "A-1", "--reason", "inspection")
        assert opened.returncode == 0, opened.stderr + daemon.log()
        assert "A-1" in opened.stdout
        # The simulated door shuts by itself; the daemon reads its hook latched again.
        wait_until(
            lambda: any(
                r["action"] == "door.closed" and r["subject"] == "A-1"
                for r in kiosk_json(config, "audit", "tail", "-n", "50")[1]["rows"]
            ),
            what="A-1 door.closed in the audit log",
        )
        # Lock 1's IR sensor sees a parcel in free locker A-2: the presence watch says so.
        wait_until(
            lambda: "locker A-2 is free but its presence sensor sees something" in daemon.log(),
            what="the presence warning for A-2 in the daemon's log",
        )
        code = daemon.terminate()
        assert code == 0, daemon.log()


def test_kiosk_run_says_which_kerong_board_is_silent(tmp_path, line):
    config = kerong_config(short_dir(tmp_path), line, unit=2)
    done = run_to_end(config)
    said = one_error_line(done, EX_UNAVAILABLE, "no Kerong board answered at address 2")
    assert "address switch" in said
