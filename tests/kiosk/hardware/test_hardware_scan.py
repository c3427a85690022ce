"""`kiosk hardware scan` as a real process against simulated boards on a real pty.

With the daemon stopped the command opens the bus itself; with it running it
asks the daemon, which owns the bus. Either way the line carries reads only:
the simulated board's frame log shows no write of any kind from the scan.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.daemon_proc import DaemonProcess, kiosk
from support.simboard_proc import SimBoardProcess, bank_config


def found(stdout: str) -> tuple[str, list[tuple[object, ...]]]:
    data = json.loads(stdout)
    rows = [
        (
            b["bus"],
            b["unit"],
            b["profile"],
            b["map_version"],
            b["channels"],
            b["presence_sensors"],
            b["configured"],
        )
        for b in data["boards"]
    ]
    return data["via"], rows


@pytest.mark.parametrize(
    ("sim_args", "version", "sensors"), [((), 1, 0), (("--presence",), 2, 4)], ids=["v1", "v2"]
)
def test_scan_with_the_daemon_stopped_lists_each_board_and_only_reads(
    tmp_path: Path, state: Path, sim_args: tuple[str, ...], version: int, sensors: int
) -> None:
    sim = SimBoardProcess(tmp_path, *sim_args, units=2, channels=4)
    try:
        config = bank_config(state, sim.path)
        # A generous wait per unit: the board is another process on a busy machine.
        done = kiosk(config, "hardware", "scan", "--units", "1-3", "--timeout-ms", "2000", "--json")
        assert done.returncode == 0, done.stderr
        assert found(done.stdout) == (
            "bus",
            [
                ("rs485", 1, "kiosk-v1", version, 4, sensors, True),
                ("rs485", 2, "kiosk-v1", version, 4, sensors, False),
            ],
        )
        records = sim.records()
        assert {unit for unit, *_ in records} == {1, 2, 3}  # unit 3: asked, nobody there
        assert {fc for _, fc, *_ in records} == {4}  # identity reads (FC04), nothing else
        assert sim.writes() == []
        table = kiosk(config, "hardware", "scan", "--units", "2", "--timeout-ms", "2000")
        assert table.returncode == 0, table.stderr
        assert "kiosk-v1" in table.stdout and "new" in table.stdout
    finally:
        sim.close()


def test_scan_with_the_daemon_running_is_asked_of_the_daemon_and_unlocks_nothing(
    state: Path, boards: SimBoardProcess
) -> None:
    config = bank_config(state, boards.path)
    with DaemonProcess(config) as daemon:
        done = kiosk(config, "hardware", "scan", "--units", "1-3", "--timeout-ms", "2000", "--json")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert found(done.stdout) == (
            "daemon",
            [
                ("rs485", 1, "kiosk-v1", 2, 4, 4, True),
                ("rs485", 2, "kiosk-v1", 2, 4, 4, False),
            ],
        )
    # The daemon set its own board up (FC06, its pulse length); no lock was pulsed,
    # and the new board and the empty unit were only asked who they are.
    assert [fc for _, fc, _ in boards.writes() if fc != 6] == []
    assert {fc for unit, fc, *_ in boards.records() if unit != 1} == {4}


def test_scan_of_a_bus_that_is_not_there_is_one_line(state: Path) -> None:
    config = bank_config(state, "/dev/ttyNOPE9")
    done = kiosk(config, "hardware", "scan", "--units", "1-2")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "/dev/ttyNOPE9" in done.stderr, done.stderr
    unknown = kiosk(config, "hardware", "scan", "--bus", "nope")
    assert unknown.returncode == 2 and "no bus named 'nope'" in unknown.stderr
