"""Reopen and report, authorised by the visit that opened the door, audited, with their events."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from support.daemon_rig import DaemonRig

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiError


@pytest.fixture
async def rig(tmp_path):
    async with DaemonRig(tmp_path) as r:
        yield r


@pytest.fixture
async def admin(rig):
    client = AsyncApiClient(rig.socket)
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def keypad(rig):
    client = AsyncApiClient(rig.socket)
    await client.connect(public=True)
    yield client
    await client.close()


async def finished(client, label: str) -> None:
    for _ in range(500):
        if (await client.call("courier.done", locker=label))["finished"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"locker {label}'s door closing was never recorded")


def rows(rig, sql: str) -> list[tuple]:
    conn = sqlite3.connect(rig.config.ledger.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_pickup_reopens_once_and_for_something_left_only_with_its_visit(rig, admin, keypad):
    parcel = await admin.call("parcels.announce", size="S")
    opened = await keypad.call("code.submit", code=parcel["delivery_code"])
    rig.doors.close(opened["locker"])
    await finished(admin, opened["locker"])
    pickup = await keypad.call("code.submit", code=parcel["pickup_code"])
    label, visit = pickup["locker"], pickup["visit"]
    rig.doors.close(label)
    await finished(admin, label)
    with pytest.raises(ApiError) as refused:  # no visit: no door
        await keypad.call("door.reopen", visit="made-up", why="didnt_open")
    assert refused.value.error["code"] == "not_allowed"
    again = await keypad.call("door.reopen", visit=visit, why="left_something")
    assert again["locker"] == label and rig.doors.is_open(label)
    rig.doors.close(label)
    await finished(admin, label)
    with pytest.raises(ApiError):  # each kind once
        await keypad.call("door.reopen", visit=visit, why="left_something")
    audit = rows(rig, "SELECT action, subject FROM audit WHERE action = 'visit.reopen'")
    assert audit == [("visit.reopen", label)]
    assert rows(rig, "SELECT COUNT(*) FROM outbox WHERE type = 'door.opened'")[0][0] >= 3


async def test_a_courier_report_flags_the_locker_and_moves_the_parcel(rig, admin, keypad):
    parcel = await admin.call("parcels.announce", size="S")
    opened = await keypad.call("code.submit", code=parcel["delivery_code"])
    first = opened["locker"]
    rig.doors.close(first)
    await finished(admin, first)
    report = await keypad.call("door.report", visit=opened["visit"])
    assert report["reported"] == first
    moved = report["next"]
    assert moved["locker"] != first and moved["visit"] and rig.doors.is_open(moved["locker"])
    status = {lk["label"]: lk for lk in (await admin.call("status"))["lockers"]}
    assert status[first]["status"] == "OUT_OF_SERVICE" and status[first]["parcel_id"] is None
    assert status[moved["locker"]]["parcel_id"] == parcel["parcel_id"]
    rig.doors.close(moved["locker"])
    await finished(admin, moved["locker"])
    parcels = {p["parcel_id"]: p for p in (await admin.call("parcels"))["parcels"]}
    assert parcels[parcel["parcel_id"]]["locker"] == moved["locker"]
    assert parcels[parcel["parcel_id"]]["status"] == "DELIVERED"
    events = [t for (t,) in rows(rig, "SELECT type FROM outbox ORDER BY seq")]
    assert "locker.out_of_service" in events
    with pytest.raises(ApiError):  # once
        await keypad.call("door.report", visit=opened["visit"])


async def test_a_couriers_reopen_is_announced_as_a_reopen_not_a_technician(rig, admin, keypad):
    parcel = await admin.call("parcels.announce", size="S")
    opened = await keypad.call("code.submit", code=parcel["delivery_code"])
    label = opened["locker"]
    rig.doors.close(label)
    await finished(admin, label)
    await keypad.call("door.reopen", visit=opened["visit"], why="didnt_open")
    assert rig.doors.is_open(label)
    rig.doors.close(label)
    await finished(admin, label)
    moves = [
        (t, json.loads(b))
        for t, b in rows(rig, "SELECT type, body FROM outbox ORDER BY seq")
        if t in ("door.opened", "door.closed")
    ]
    assert [(t, b["reason"], b.get("role")) for t, b in moves] == [
        ("door.opened", "delivery", None),
        ("door.closed", "delivery", None),
        ("door.opened", "reopen", "courier"),
        ("door.closed", "reopen", "courier"),
    ]
    assert {b["parcel_id"] for _, b in moves} == {parcel["parcel_id"]}
    ops = rows(rig, "SELECT kind, actor, reason, state FROM door_ops ORDER BY id")
    assert ops == [("delivery", "courier", "", "DONE"), ("reopen", "courier", "didnt_open", "DONE")]
    tail = (await admin.call("audit.tail", n=20))["rows"]
    assert any(
        r["action"] == "door.opened" and json.loads(r["detail"]).get("reason") == "reopen"
        for r in tail
    ), tail
