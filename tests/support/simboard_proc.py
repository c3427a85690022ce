"""`kiosk simulate board --pty -v` in its own process, every frame it sees logged to a file.

A test reads the frame log to say what was sent on the line: which units were
asked, and that nothing was written (no FC05/06/15/16) where nothing may be.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from kiosk.ledger.db import Ledger

#: Modbus function codes that change something on a board.
WRITE_FUNCTIONS = frozenset({5, 6, 15, 16})

_FRAME = re.compile(r"unit=(\d+) fc=(\d+) (\w+): ([0-9a-f ]+)")


class SimBoardProcess:
    """Boards at units 1..`units` on a new pty; `path` is the device to open."""

    def __init__(self, where: Path, *args: str, units: int = 1, channels: int = 4) -> None:
        self.frames = where / "frames.log"
        self._frames_out = self.frames.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "firmware_bridge.simboard",
                "--pty",
                "-v",
                "--units",
                str(units),
                "--channels",
                str(channels),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._frames_out,
            text=True,
        )
        assert self.proc.stdout is not None
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), f"no pty printed: {self.frames.read_text()}"

    def records(self) -> list[tuple[int, int, str, bytes]]:
        """(unit, function code, outcome, raw frame) of every checked frame so far."""
        return [
            (int(unit), int(fc), outcome, bytes.fromhex(raw))
            for unit, fc, outcome, raw in _FRAME.findall(self.frames.read_text())
        ]

    def writes(self) -> list[tuple[int, int, bytes]]:
        """(unit, function code, raw frame) of every write the line carried."""
        return [(u, fc, raw) for u, fc, _, raw in self.records() if fc in WRITE_FUNCTIONS]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._frames_out.close()


def bank_config(state: Path, port: str, channels: int = 4) -> Path:
    """Board 1 (`channels` lockers U1-0...) on bus "rs485" at `port`; the new bank is not in it."""
    key = state / "site-code.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    key.chmod(0o600)
    lines = [
        '[site]\nid = "hw-01"',
        f"[ledger]\npath = {json.dumps(str(state / 'ledger.db'))}",
        f"[keys]\nsite_code_key_file = {json.dumps(str(key))}",
        f"[api]\nsocket = {json.dumps(str(state / 'kiosk.sock'))}",
        f'[[bus]]\nname = "rs485"\nkind = "modbus-rtu"\nport = {json.dumps(port)}\ntimeout_s = 1.0',
        f'[[board]]\nbus = "rs485"\nunit = 1\nchannels = {channels}',
    ]
    lines += [
        f'[[locker]]\nlabel = "U1-{ch}"\nsize = "S"\nbus = "rs485"\nunit = 1\nchannel = {ch}'
        for ch in range(channels)
    ]
    # Generous: a door watched after a commissioning pulse on a busy machine.
    lines.append("[policy]\ndoor_open_timeout_s = 30.0")
    path = state / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n")
    Ledger.open(state / "ledger.db").close()
    return path
