"""`kiosk tech set-pin` against a real `kiosk run`: a PIN shorter than 6 digits is refused.

The command reads the PIN twice with getpass. It runs here in a session of
its own, with no controlling terminal, so getpass reads the lines from
stdin (and warns on stderr that it cannot hide them), as it would from a
script.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon_proc import (
    CLI_TIMEOUT_S,
    DaemonProcess,
    kiosk_json,
    short_dir,
    write_config,
)

from kiosk.api.client import ApiClient, ApiError


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(short_dir(tmp_path))


def set_pin(config: Path, technician: str, pin: str, again: str | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(config), "tech", "set-pin", technician],
        input=f"{pin}\n{pin if again is None else again}\n",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=os.environ.copy(),
        start_new_session=True,  # no controlling terminal: getpass falls back to stdin
        check=False,
    )


def technicians(config: Path) -> list[tuple]:
    uri = (config.parent / "ledger.db").absolute().as_uri() + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute("SELECT technician_id, pin_digest FROM technicians").fetchall()
    conn.close()
    return rows


def login(config: Path, pin: str) -> str:
    """The outcome of a keypad login with `pin`: the technician's id or the error code."""
    with ApiClient(str(config.parent / "kiosk.sock")) as client:
        try:
            return client.call("tech.login", pin=pin)["technician_id"]
        except ApiError as exc:
            return exc.code


@pytest.mark.parametrize("short", ["4711", "90210"])
def test_a_short_pin_is_refused_in_one_line_and_changes_nothing(config, short):
    with DaemonProcess(config) as daemon:
        done = set_pin(config, "alice", "52963107")
        assert done.returncode == 0, done.stderr
        assert "PIN set for alice" in done.stdout
        before = technicians(config)

        refused = set_pin(config, "alice", short)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "6 to 10 digits" in errors[0], refused.stderr
        assert short not in refused.stderr
        assert technicians(config) == before
        assert login(config, "52963107") == "alice"  # the old PIN still works
        assert login(config, short) == "invalid_code"
        rc, tail = kiosk_json(config, "audit", "tail", "-n", "50")
        assert rc == 0
        sets = [r for r in tail["rows"] if r["action"] == "technician.set_pin"]
        assert len(sets) == 1  # the refused one left no row
        for row in tail["rows"]:  # not ts: its microseconds may spell anything
            text = json.dumps([row["actor"], row["action"], row["subject"], row["detail"]])
            assert short not in text and "52963107" not in text
        assert daemon.terminate() == 0
