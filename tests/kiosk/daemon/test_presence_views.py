"""Presence in `kiosk status --json` and `kiosk doors --json` (real processes) and in the
flows through the daemon, on gpio presence_pins (MockFactory pins)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from support.daemon_proc import kiosk, short_dir, write_config
from support.daemon_rig import DaemonRig

from kiosk.api.aclient import AsyncApiClient

WAIT_S = 15.0


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S} s")
        await asyncio.sleep(0.02)
    return value


async def json_of(config: Path, *args: str) -> dict[str, Any]:
    done = await asyncio.to_thread(kiosk, config, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_status_and_doors_json_report_presence_true_false_or_null(state):
    async with DaemonRig(state, presence=True) as rig:
        config = write_config(state)
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        rig.put("B-1")

        async def b1_seen() -> bool:
            doors = (await admin.call("doors"))["doors"]
            return any(d["label"] == "B-1" and d["presence"] is True for d in doors)

        await eventually(b1_seen, "B-1 occupied")
        doors = await json_of(config, "doors")
        assert {d["label"]: d["presence"] for d in doors["doors"]} == {
            "A-1": False,
            "A-2": False,
            "B-1": True,
            "C-1": False,
        }
        status = await json_of(config, "status")
        assert {lk["label"]: lk["presence"] for lk in status["lockers"]}["B-1"] is True
        await admin.close()


async def test_without_sensors_presence_is_null(state):
    async with DaemonRig(state):
        config = write_config(state)
        doors = await json_of(config, "doors")
        assert {d["presence"] for d in doors["doors"]} == {None}
        status = await json_of(config, "status")
        assert {lk["presence"] for lk in status["lockers"]} == {None}


async def test_an_empty_delivery_through_the_daemon_is_refused_after_one_reopening(state):
    async with DaemonRig(state, presence=True) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        ann = await admin.call("parcels.announce", size="S")
        res = await admin.call("code.submit", code=ann["delivery_code"])
        assert res["locker"] == "A-1" and rig.doors.is_open("A-1")
        rig.doors.close("A-1")

        async def reopened() -> bool:  # the daemon saw it open again (not only the pulse)
            rows = (await admin.call("audit.tail", n=50))["rows"]
            return sum(r["action"] == "door.opened" and r["subject"] == "A-1" for r in rows) == 2

        await eventually(reopened, "A-1 reopened")
        assert rig.doors.is_open("A-1") and rig.doors.pulses["A-1"] == 2
        rig.doors.close("A-1")

        async def released() -> bool:
            status = (await admin.call("status"))["lockers"]
            return any(lk["label"] == "A-1" and lk["status"] == "AVAILABLE" for lk in status)

        await eventually(released, "A-1 free again")
        parcels = (await admin.call("parcels"))["parcels"]
        assert [(p["parcel_id"], p["status"]) for p in parcels] == [(ann["parcel_id"], "EXPECTED")]
        await admin.close()


async def test_selftest_reports_a_presence_sensor_stuck_at_occupied_in_a_free_locker(state):
    async with DaemonRig(state, presence=True) as rig:
        config = write_config(state)
        passed = await asyncio.to_thread(kiosk, config, "selftest")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "A-1: shut inside empty ok" in passed.stdout

        rig.put("C-1")  # stuck at occupied (or something left behind): C-1 is free
        done = await asyncio.to_thread(kiosk, config, "selftest")
        assert done.returncode == 1, done.stdout + done.stderr
        [line] = [ln for ln in done.stdout.splitlines() if " C-1: " in ln]
        assert line.endswith(
            "C-1: shut inside occupied FAULT: presence sensor reads occupied in a free "
            "locker: something left inside, or the sensor is stuck"
        )
        assert done.stdout.splitlines()[-1] == "self-test found 1 fault(s)"

        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        report = await admin.call("presence.check")
        assert report["ok"] is False
        [bad] = [lk for lk in report["lockers"] if not lk["ok"]]
        assert (bad["label"], bad["status"], bad["readings"]) == ("C-1", "AVAILABLE", ["occupied"])
        await admin.close()

        doctor = await asyncio.to_thread(kiosk, config, "doctor", "--json")
        assert doctor.returncode == 1, doctor.stdout + doctor.stderr
        checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert checks["presence"]["status"] == "fail", checks["presence"]
        assert checks["presence"]["detail"].startswith("C-1: reads occupied in a free locker")
        assert "kiosk check LABEL empty" in checks["presence"]["fix"]

        rig.put("C-1", inside=False)  # taken out
        doctor = await asyncio.to_thread(kiosk, config, "doctor", "--json")
        checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert checks["presence"]["status"] == "ok", checks["presence"]


async def test_presence_check_without_sensors_finds_nothing_wrong(state):
    async with DaemonRig(state) as rig:
        doctor = await asyncio.to_thread(kiosk, write_config(state), "doctor", "--json")
        checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert checks["presence"]["status"] == "skip", checks["presence"]
        assert checks["presence"]["detail"] == "no parcel-presence sensors fitted"
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        report = await admin.call("presence.check", locker="A-1")
        assert report == {
            "lockers": [
                {
                    "label": "A-1",
                    "status": "AVAILABLE",
                    "readings": ["none"],
                    "ok": True,
                    "problem": "",
                }
            ],
            "ok": True,
        }
        await admin.close()


async def test_a_restart_between_the_two_empty_closings_neither_reopens_again_nor_loses_it(state):
    """The reopen-once is in the ledger: after `systemctl restart` with the reopened door
    still open, the second empty closing is refused as it would have been, no third pulse."""
    async with DaemonRig(state, presence=True) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        ann = await admin.call("parcels.announce", size="S")
        res = await admin.call("code.submit", code=ann["delivery_code"])
        assert res["locker"] == "A-1" and rig.doors.is_open("A-1")
        rig.doors.close("A-1")

        async def reopened() -> bool:
            rows = (await admin.call("audit.tail", n=50))["rows"]
            return sum(r["action"] == "door.opened" and r["subject"] == "A-1" for r in rows) == 2

        await eventually(reopened, "A-1 reopened")
        await admin.close()
        await rig.restart()
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        assert rig.doors.is_open("A-1")
        rig.doors.close("A-1")  # still empty

        async def released() -> bool:
            status = (await admin.call("status"))["lockers"]
            return any(lk["label"] == "A-1" and lk["status"] == "AVAILABLE" for lk in status)

        await eventually(released, "A-1 free again")
        parcels = (await admin.call("parcels"))["parcels"]
        assert [(p["parcel_id"], p["status"], p["needs_check"]) for p in parcels] == [
            (ann["parcel_id"], "EXPECTED", False)
        ]
        assert rig.doors.pulses["A-1"] == 2 and not rig.doors.is_open("A-1")
        actions = [r["action"] for r in (await admin.call("audit.tail", n=50))["rows"]]
        assert "door_op.resumed" in actions and "door_op.recovered" not in actions
        await admin.close()
