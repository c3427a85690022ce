"""A daemon that finds a ledger written by a newer version refuses to start, in one line.

After an upgrade that is rolled back by reinstalling the old program only, the
ledger carries a schema the old code does not know. `kiosk run` must not
touch it: one line naming the file and both schema versions and what to do,
exit 78 (docs/cli.md), and the file exactly as it was.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from support.daemon_proc import CLI_TIMEOUT_S, newer_ledger, short_dir, write_config

from kiosk.ledger.migrations import known_version

EX_CONFIG = 78


def test_kiosk_run_refuses_a_ledger_from_a_newer_version(tmp_path: Path) -> None:
    state = short_dir(tmp_path)
    config = write_config(state)
    ledger = state / "ledger.db"
    newer = newer_ledger(ledger)
    before = hashlib.sha256(ledger.read_bytes()).hexdigest()

    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )

    output = f"exit {done.returncode}\nstdout: {done.stdout!r}\nstderr: {done.stderr!r}"
    assert done.returncode == EX_CONFIG, output
    assert "Traceback" not in done.stderr and done.stdout == "", output
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: cannot start: "), output
    assert str(ledger) in line and "newer version" in line, output
    assert f"schema {newer}" in line and f"up to {known_version()}" in line, output
    assert "restore" in line, output  # says what to do
    assert hashlib.sha256(ledger.read_bytes()).hexdigest() == before
    assert not (state / "kiosk.sock").exists()
