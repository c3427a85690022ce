"""`kiosk hardware map` as a real process, answered on stdin, beside a real daemon.

The daemon owns the bus: it opens each channel of the new board (unit 2, not
in the config) and audits each opening; the command writes a new config file
that `kiosk config check` accepts. The simulated board's frame log shows one
unlock write per channel of the new board and none on the configured one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon_proc import CLI_TIMEOUT_S, DaemonProcess, kiosk, kiosk_json
from support.simboard_proc import SimBoardProcess, bank_config

from kiosk.api.client import ApiClient, ApiError
from kiosk.config.loader import load_config

FC_WRITE_COIL = 5

#: channel 0: N-1, M, column 1, row 1; channel 1: N-2, S; channel 2: no locker; channel 3:
#: a taken label and a bad size are asked again, then N-4, L, column 2, row 1.
ANSWERS = "N-1\nM\n1\n1\nN-2\ns\n\n\n\nU1-0\nN-4\nXL\nL\n2\n1\n"


def mapping(config: Path, out: Path, answers: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kiosk", "--config", str(config), "hardware", "map"]
    return subprocess.run(
        [*command, *args, "--out", str(out)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S * 2,
        check=False,
    )


def unlocks(sim: SimBoardProcess) -> list[tuple[int, int]]:
    """(unit, coil) of every FC05 on the line."""
    return [(unit, raw[2] << 8 | raw[3]) for unit, fc, raw in sim.writes() if fc == FC_WRITE_COIL]


def test_map_walks_a_new_board_and_writes_a_config_that_checks(
    state: Path, boards: SimBoardProcess
) -> None:
    config = bank_config(state, boards.path)
    out = state / "kiosk-new.toml"
    with DaemonProcess(config) as daemon:
        done = mapping(config, out, ANSWERS, "--unit", "2")
        assert done.returncode == 0, done.stdout + done.stderr + daemon.log()
        code, audit = kiosk_json(config, "audit", "tail", "-n", "50")
        assert code == 0
    assert done.stdout.count("its door sensor reads open") == 4, done.stdout
    assert "U1-0 is taken already" in done.stdout
    assert unlocks(boards) == [(2, 0), (2, 1), (2, 2), (2, 3)]
    opened = [
        (
            row["subject"],
            json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"],
        )
        for row in audit["rows"]
        if row["action"] == "hardware.map_open"
    ]
    assert [subject for subject, _ in opened] == [f"rs485/2/{ch}" for ch in range(4)]
    assert opened[3][1] == {"bus": "rs485", "unit": 2, "channel": 3}

    check = kiosk(config, "config", "check", str(out))
    assert check.returncode == 0, check.stderr
    new = load_config(out)
    assert [(b.unit, b.profile, b.channels) for b in new.boards] == [
        (1, "kiosk-v1", 4),
        (2, "kiosk-v1", 4),
    ]
    added = [
        (lk.label, lk.size.value, lk.unit, lk.channel, lk.column, lk.row)
        for lk in new.lockers
        if lk.unit == 2
    ]
    assert added == [
        ("N-1", "M", 2, 0, 1, 1),
        ("N-2", "S", 2, 1, None, None),
        ("N-4", "L", 2, 3, 2, 1),
    ]
    assert config.read_text() in out.read_text()  # the live config, as it was, comes first


def test_map_never_writes_over_a_file_and_opens_nothing_then(
    state: Path, boards: SimBoardProcess
) -> None:
    config = bank_config(state, boards.path)
    with DaemonProcess(config):
        done = mapping(config, config, ANSWERS, "--unit", "2")
        assert done.returncode == 1
        assert "exists already" in done.stderr and done.stderr.count("\n") == 1
        # A configured locker's channel is not a commissioning door: `kiosk open` journals it.
        with ApiClient(str(state / "kiosk.sock")) as client, pytest.raises(ApiError) as refused:
            client.call("hardware.map_open", bus="rs485", unit=1, channel=0)
        assert refused.value.code == "bad_request" and "U1-0" in str(refused.value)
        # The entries are checked against the config before any file is made of them.
        for bad in ({"label": "U1-1", "size": "S", "channel": 0}, {"label": "N-9", "size": "XL"}):
            with ApiClient(str(state / "kiosk.sock")) as client, pytest.raises(ApiError) as no:
                client.call(
                    "hardware.map_entries",
                    bus="rs485",
                    unit=2,
                    profile="kiosk-v1",
                    channels=4,
                    lockers=[bad],
                )
            assert no.value.code == "bad_request"
    assert unlocks(boards) == []


def test_map_without_the_daemon_is_exit_3(state: Path, boards: SimBoardProcess) -> None:
    config = bank_config(state, boards.path)
    done = mapping(config, state / "new.toml", ANSWERS, "--unit", "2")
    assert done.returncode == 3, done.stdout + done.stderr
    assert not (state / "new.toml").exists()
    assert unlocks(boards) == []
