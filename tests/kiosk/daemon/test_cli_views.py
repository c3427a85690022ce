"""`kiosk doors`, `kiosk parcels` and `kiosk selftest` as real processes against a running daemon.

The daemon runs in-process (DaemonRig, or the two-board bank below) so that a
test can move, stick or silence what is behind it; each `kiosk` command is its
own `python -m kiosk --config FILE ...` process, run in a worker thread while
the daemon keeps serving on the test's event loop. The config file the
commands read names the daemon's socket and nothing else that matters to them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from support.daemon_proc import kiosk, short_dir, write_config
from support.daemon_rig import DaemonRig
from support.doors import SimDoorPhysics
from support.rig import SIM_SILENCE_TIMEOUT_S

from firmware_bridge.multibank import MultiBank
from firmware_bridge.simboard.bank import SimulatedLockBank
from kiosk.api.aclient import AsyncApiClient
from kiosk.config.loader import parse_config
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier
from kiosk.wiring import build_lock_bank

WAIT_S = 15.0  # generous: a silent board makes every poll wait for its timeouts
LABELS = ["A-1", "A-2", "B-1", "C-1"]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


async def run_kiosk(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One `kiosk` process; the daemon on this loop serves it meanwhile."""
    return await asyncio.to_thread(kiosk, config, *args)


async def client(socket: str, public: bool = False) -> AsyncApiClient:
    c = AsyncApiClient(socket)
    await c.connect(public=public)
    return c


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S} s")
        await asyncio.sleep(0.02)


async def doors_are(api: AsyncApiClient, expected: dict[str, str]) -> None:
    async def check() -> bool:
        doors = {d["label"]: d["door"] for d in (await api.call("doors"))["doors"]}
        return doors == expected

    await eventually(check, f"doors {expected}")


def table(done: subprocess.CompletedProcess[str]) -> tuple[list[str], dict[str, list[str]]]:
    """A command's human table: its header words and each row's cells by its first cell."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    header, rows = lines[0].split(), [line.split() for line in lines[1:]]
    return header, {row[0]: row[1:] for row in rows}


# --- kiosk doors ------------------------------------------------------------------------


async def test_kiosk_doors_shows_each_door_open_shut_or_unknown(state):
    async with DaemonRig(state, backend="modbus", silence=True) as rig:  # a board goes silent
        config = write_config(state)  # the CLI's config: the same socket
        admin = await client(rig.socket)
        await doors_are(admin, dict.fromkeys(LABELS, "shut"))

        opened = await run_kiosk(config, "open", "B-1", "--reason", "inspection")
        assert opened.returncode == 0, opened.stderr
        expected = {"A-1": "shut", "A-2": "shut", "B-1": "open", "C-1": "shut"}
        await doors_are(admin, expected)

        header, rows = table(await run_kiosk(config, "doors"))
        assert header == ["locker", "door"]
        assert rows == {label: [door] for label, door in expected.items()}
        as_json = await run_kiosk(config, "doors", "--json")
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout) == {
            "doors": [
                {"label": label, "door": expected[label], "presence": None} for label in LABELS
            ]
        }

        # The board stops answering: every door is unknown, never a guessed state.
        rig.doors.sim[1].silent = True
        await doors_are(admin, dict.fromkeys(LABELS, "unknown"))
        as_json = await run_kiosk(config, "doors", "--json")
        assert json.loads(as_json.stdout) == {
            "doors": [{"label": label, "door": "unknown", "presence": None} for label in LABELS]
        }
        _, rows = table(await run_kiosk(config, "doors"))
        assert rows == {label: ["unknown"] for label in LABELS}

        rig.doors.sim[1].silent = False
        rig.doors.close("B-1")
        await doors_are(admin, dict.fromkeys(LABELS, "shut"))
        _, rows = table(await run_kiosk(config, "doors"))
        assert rows == {label: ["shut"] for label in LABELS}
        await admin.close()


# --- kiosk parcels ----------------------------------------------------------------------


async def test_kiosk_parcels_lists_every_parcel_with_its_status_locker_and_deadline(state):
    async with DaemonRig(state) as rig:
        config = write_config(state)
        admin = await client(rig.socket)
        keypad = await client(rig.socket, public=True)

        async def outcome(label: str, status: str) -> None:
            async def check() -> bool:
                lockers = (await admin.call("status"))["lockers"]
                return any(lk["label"] == label and lk["status"] == status for lk in lockers)

            await eventually(check, f"{label} {status}")

        waiting = await admin.call("parcels.announce", size="S", parcel_id="P-WAIT")
        inside = await admin.call("parcels.announce", size="M", parcel_id="P-IN")
        gone = await admin.call("parcels.announce", size="L", parcel_id="P-GONE")
        for announced in (inside, gone):
            opened = await keypad.call("code.submit", code=announced["delivery_code"])
            rig.doors.close(opened["locker"])
            await outcome(opened["locker"], "OCCUPIED")
        picked = await keypad.call("code.submit", code=gone["pickup_code"])
        rig.doors.close(picked["locker"])
        await outcome(picked["locker"], "AVAILABLE")
        listed = {p["parcel_id"]: p for p in (await admin.call("parcels"))["parcels"]}
        assert waiting["parcel_id"] == "P-WAIT"

        header, rows = table(await run_kiosk(config, "parcels"))
        assert header == ["parcel", "size", "status", "locker", "expires"]
        assert set(rows) == {"P-WAIT", "P-IN", "P-GONE"}
        assert rows["P-WAIT"] == ["S", "EXPECTED", "-", "-"]  # no locker, no deadline yet
        assert rows["P-IN"] == ["M", "DELIVERED", "B-1", listed["P-IN"]["expires_at"]]
        assert rows["P-GONE"][:3] == ["L", "PICKED_UP", "C-1"]
        assert "check!" not in (await run_kiosk(config, "parcels")).stdout
        await keypad.close()
        await admin.close()


# --- kiosk selftest ---------------------------------------------------------------------

#: (label, size, unit, channel): two boards on one simulated RS-485 bus.
TWO_BOARDS = [("A-1", "S", 1, 0), ("A-2", "S", 1, 1), ("B-1", "M", 2, 0), ("C-1", "L", 2, 1)]


@contextlib.asynccontextmanager
async def two_board_daemon(state: Path) -> AsyncIterator[tuple[Daemon, SimDoorPhysics]]:
    """The daemon on the `simulated` bus kind with boards at units 1 and 2.

    Its one test makes a board silent: replies are awaited SIM_SILENCE_TIMEOUT_S."""
    key = state / "site-code.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    data: dict[str, Any] = {
        "site": {"id": "two-01", "name": "Two boards", "lat": 52.5, "lon": 13.4},
        "ledger": {"path": "ledger.db"},
        "keys": {"site_code_key_file": "site-code.key"},
        "api": {"socket": "kiosk.sock"},
        "bus": [
            {
                "name": "rs485",
                "kind": "simulated",
                "door_close_s": 0,
                "poll_ms": 20,
                "timeout_s": SIM_SILENCE_TIMEOUT_S,
                "retries": 1,
            }
        ],
        "board": [
            {
                "bus": "rs485",
                "unit": unit,
                "profile": "kiosk-v1",
                "channels": 2,
                "pulse_ms": 150,
                "max_pulse_ms": 500,
            }
            for unit in (1, 2)
        ],
        "locker": [
            {"label": label, "size": size, "bus": "rs485", "unit": unit, "channel": ch}
            for label, size, unit, ch in TWO_BOARDS
        ],
        "policy": {"door_open_timeout_s": 0.5, "unlock_retries": 1},
    }
    config = parse_config(data, state / "rig.toml")
    bank = build_lock_bank(config)
    assert isinstance(bank, MultiBank)
    sim_bank = bank.banks["rs485"]
    assert isinstance(sim_bank, SimulatedLockBank)
    doors = SimDoorPhysics(sim_bank.sim, {label: (u, ch) for label, _, u, ch in TWO_BOARDS})
    daemon = Daemon(config, bank=bank, notifier=Notifier(""))
    await bank.start()
    try:
        await daemon.start()
        yield daemon, doors
    finally:
        await daemon.stop()


async def test_kiosk_selftest_marks_unreadable_sensors_as_faults_and_exits_1(state):
    async with two_board_daemon(state) as (daemon, doors):
        config = write_config(state)
        socket = str(daemon.config.api.socket)
        assert socket == str(state / "kiosk.sock")
        admin = await client(socket)
        await doors_are(admin, dict.fromkeys(LABELS, "shut"))

        passed = await run_kiosk(config, "selftest")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert passed.stdout.splitlines()[-1] == "self-test passed"

        doors.stuck_sensor("A-1", True)  # reads open, whatever the (shut) door does
        doors.sim[2].silent = True  # the second board's sensors cannot be read at all
        done = await run_kiosk(config, "selftest")
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        progress = [
            re.fullmatch(r"\[(#*) *\] (\d+)/4 (\S+): (\S+) (ok|FAULT)", line) for line in lines[:-1]
        ]
        assert all(progress) and len(progress) == 4, lines
        verdict = {}
        for index, (match, label) in enumerate(zip(progress, LABELS, strict=True), 1):
            assert match is not None
            bar, at, name, reading, result = match.groups()
            assert (len(bar), int(at), name) == (5 * index, index, label)  # door by door
            verdict[name] = [reading, result]
        assert verdict["A-2"] == ["shut", "ok"]
        assert verdict["B-1"] == ["unknown", "FAULT"]
        assert verdict["C-1"] == ["unknown", "FAULT"]
        assert verdict["A-1"][0] == "open"  # the stuck reading is shown as it reads
        assert lines[-1] == "self-test found 2 fault(s)"
        await admin.close()
