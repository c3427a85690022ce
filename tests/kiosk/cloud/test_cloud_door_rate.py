"""Remote door openings are rationed from the ledger: only a door that opened uses a slot,
and a restart of the daemon on the same ledger gives none back (policy.remote_opens_per_hour)."""

from __future__ import annotations

import asyncio

from cloudrig import SITE, CloudRig, mqtt_config, result_of, wait_for


async def door_open(cloud, label: str, **extra: str) -> tuple[bool, str | None]:
    args = {"label": label, "reason": "support call", **extra}
    jti = await asyncio.to_thread(cloud.send, SITE, "door.open", args)
    body = await result_of(cloud, jti)
    return body["ok"], (body["error"] or {}).get("code")


def remote_opens(rig) -> int:
    rows = rig.ledger.db.query("SELECT actor FROM audit WHERE action = 'door.opened'")
    return sum(1 for r in rows if r["actor"].startswith("cloud:"))


async def test_refused_door_opens_use_no_slot(tmp_path, broker, cloud_key, cloud):
    rig = CloudRig(
        tmp_path / "kiosk", mqtt_config(broker), cloud_key, policy={"remote_opens_per_hour": 2}
    )
    async with rig:
        await wait_for(rig.listening)
        # a locker that is not there
        assert await door_open(cloud, "Z-9") == (False, "not_found")
        # a door that stays shut through every pulse (it goes out of service)
        rig.doors.jammed.add("B-1")
        assert await door_open(cloud, "B-1") == (False, "door_jammed")
        # a locker in use: a technician has its door open right now
        await rig.daemon.service.open_door("A-2", "check", actor="technician")
        assert await door_open(cloud, "A-2") == (False, "invalid_state")
        assert remote_opens(rig) == 0
        # both slots are still there
        assert await door_open(cloud, "A-1") == (True, None)
        assert await door_open(cloud, "C-1") == (True, None)
        rig.doors.close("A-2")
        await wait_for(lambda: rig.ledger.doors.unfinished_for("A-2") is None)
        assert await door_open(cloud, "A-2") == (False, "rate_limited")
        assert remote_opens(rig) == 2
        assert rig.doors.pulses["A-2"] == 1  # the technician's pulse only


async def test_the_rate_survives_a_restart_on_the_same_ledger(tmp_path, broker, cloud_key, cloud):
    state = tmp_path / "kiosk"
    policy = {"remote_opens_per_hour": 1}
    async with CloudRig(state, mqtt_config(broker), cloud_key, policy=policy) as rig:
        await wait_for(rig.listening)
        assert await door_open(cloud, "A-1") == (True, None)
    async with CloudRig(state, mqtt_config(broker), cloud_key, policy=policy) as rig:
        await wait_for(rig.listening)
        assert await door_open(cloud, "A-2") == (False, "rate_limited")
        assert rig.doors.pulses["A-2"] == 0
    # a higher limit in the config lets the next one through, still counting the first
    policy = {"remote_opens_per_hour": 2}
    async with CloudRig(state, mqtt_config(broker), cloud_key, policy=policy) as rig:
        await wait_for(rig.listening)
        assert await door_open(cloud, "A-2") == (True, None)
        assert await door_open(cloud, "C-1") == (False, "rate_limited")
