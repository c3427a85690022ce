"""The local API holds a flood: `kiosk status` gets through while other processes hammer it.

Two processes open and close connections to the daemon's socket as fast
as they can (tests/support/flood.py) while `kiosk status` runs 20 times,
each in its own process. Every call must succeed: the daemon keeps a long
listen queue and serves a bounded number of connections at once, and the
client waits its turn in the queue instead of giving up on the first EAGAIN.
The flood is bounded: two processes, each ending on a stop file, after
FLOOD_MAX_S, or when this test process is gone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon_proc import (
    READY_TIMEOUT_S,
    DaemonProcess,
    kiosk,
    short_dir,
    write_config,
)

FLOODERS = 2
CALLS = 20
FLOOD_MAX_S = 300.0  # a hard stop; the test ends the flood with the stop file long before
FLOOD = Path(__file__).parents[2] / "support" / "flood.py"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


def test_kiosk_status_gets_through_a_connection_flood(state):
    config = write_config(state)
    stop = state / "stop-flood"
    with DaemonProcess(config) as daemon:
        flooders = [
            subprocess.Popen(
                [sys.executable, str(FLOOD), str(daemon.socket), str(stop), str(FLOOD_MAX_S)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(FLOODERS)
        ]
        try:
            for flooder in flooders:
                assert flooder.stdout is not None
                assert flooder.stdout.readline().strip() == "started"
            failures = []
            for n in range(CALLS):
                done = kiosk(config, "status")
                if done.returncode != 0:
                    failures.append(f"call {n + 1}: exit {done.returncode}: {done.stderr.strip()}")
            still_flooding = [f.poll() is None for f in flooders]
        finally:
            stop.touch()
            reports = []
            for flooder in flooders:
                try:
                    out, _ = flooder.communicate(timeout=READY_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    flooder.kill()
                    out, _ = flooder.communicate()
                reports.append(out.strip())
        assert still_flooding == [True] * FLOODERS, reports  # the flood lasted all 20 calls
        assert not failures, "\n".join(failures + reports)
        assert daemon.hello() is not None
