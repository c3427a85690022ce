"""The daemon in-process on a real GPIO bank, driven only through its Unix-socket API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import stat

import pytest
from support.daemon_rig import DaemonRig

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiError


@pytest.fixture
async def rig(tmp_path):
    async with DaemonRig(tmp_path) as r:
        yield r


async def client(rig, public=False, events=None):
    c = AsyncApiClient(
        rig.socket, on_event=(lambda e, d: events.append((e, d))) if events is not None else None
    )
    await c.connect(public=public, subscribe=events is not None)
    return c


async def wait_for(predicate, timeout=3.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_socket_is_0660_and_hello_names_the_api(rig):
    mode = stat.S_IMODE(os.stat(rig.socket).st_mode)
    assert mode == 0o660
    c = await client(rig)
    hello = await c.call("hello")
    assert hello["api"] == 1 and hello["site"] == "rig-01" and hello["admin"] is True
    await c.close()


async def test_delivery_and_pickup_through_the_api(rig):
    events: list = []
    tech = await client(rig)
    kiosk = await client(rig, public=True, events=events)
    parcel = await tech.call("parcels.announce", size="M")
    opened = await kiosk.call("code.submit", code=parcel["delivery_code"])
    assert opened["ok"] and opened["role"] == "courier" and opened["locker"] == "B-1"
    rig.doors.close("B-1")
    await wait_for(
        lambda: any(e == "door.outcome" and d["result"] == "delivered" for e, d in events)
    )
    status = await tech.call("status")
    b1 = next(lk for lk in status["lockers"] if lk["label"] == "B-1")
    assert b1["status"] == "OCCUPIED" and b1["parcel_id"] == parcel["parcel_id"]
    picked = await kiosk.call("code.submit", code=parcel["pickup_code"])
    assert picked["role"] == "customer" and picked["locker"] == "B-1"
    rig.doors.close("B-1")
    await wait_for(
        lambda: any(e == "door.outcome" and d["result"] == "picked_up" for e, d in events)
    )
    types = [d["type"] for e, d in events if e == "ledger.event"]
    assert "parcel.delivered" in types and "parcel.picked_up" in types
    listing = await tech.call("parcels")
    assert [p["status"] for p in listing["parcels"]] == ["PICKED_UP"]
    await tech.close()
    await kiosk.close()


async def test_public_connection_cannot_make_technician_calls(rig):
    kiosk = await client(rig, public=True)
    for call, args in [
        ("parcels", {}),
        ("door.open", {"locker": "A-1", "reason": "x"}),
        ("parcels.announce", {"size": "S"}),
        ("lockout.reset", {}),
    ]:
        with pytest.raises(ApiError) as err:
            await kiosk.call(call, **args)
        assert err.value.code == "not_allowed"
    assert rig.doors.pulses["A-1"] == 0
    await kiosk.close()


async def test_pin_login_opens_a_session_with_the_same_lockout_rules(rig):
    tech = await client(rig)
    await tech.call("tech.set_pin", technician_id="t1", pin="471108")
    kiosk = await client(rig, public=True)
    with pytest.raises(ApiError) as err:
        await kiosk.call("tech.login", pin="0000")
    assert err.value.code == "invalid_code" and err.value.error["tries_left"] == 4
    login = await kiosk.call("tech.login", pin="471108")
    kiosk.session = login["session"]
    opened = await kiosk.call("door.open", locker="A-2", reason="inspection")
    assert opened["role"] == "technician" and rig.doors.pulses["A-2"] == 1
    for _ in range(5):
        with pytest.raises(ApiError):
            await kiosk.call("tech.login", pin="1234")
    with pytest.raises(ApiError) as err:
        await kiosk.call("tech.login", pin="471108")
    assert err.value.code == "locked_out"
    await kiosk.close()
    await tech.close()


async def test_malformed_requests_get_errors_and_the_connection_lives(rig):
    reader, writer = await asyncio.open_unix_connection(rig.socket)
    for line in [
        b"not json\n",
        b"[1,2]\n",
        b'{"id": 1}\n',
        b'{"id": 2, "call": "nope"}\n',
        b'{"id": 3, "call": "code.submit", "args": {"code": 5}}\n',
        b"x" * 70000 + b"\n",
    ]:
        writer.write(line)
        await writer.drain()
        reply = json.loads(await reader.readline())
        assert reply["ok"] is False and reply["error"]["code"] in {"bad_request", "too_large"}
    writer.write(b'{"id": 9, "call": "hello"}\n')
    await writer.drain()
    reply = json.loads(await reader.readline())
    assert reply == {"id": 9, "ok": True, "result": reply["result"]} and reply["result"]["api"] == 1
    writer.close()


async def test_stale_socket_file_is_replaced(tmp_path):
    path = tmp_path / "kiosk.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file with nobody behind it, as a crash leaves it
    async with DaemonRig(tmp_path) as rig:
        c = await client(rig)
        assert (await c.call("hello"))["api"] == 1
        await c.close()


async def test_a_second_daemon_on_the_same_ledger_is_refused(tmp_path):
    from kiosk.daemon.app import Daemon
    from kiosk.domain.errors import KioskError

    async with DaemonRig(tmp_path) as rig:
        other = dataclasses.replace(
            rig.config, api=dataclasses.replace(rig.config.api, socket=tmp_path / "other.sock")
        )
        second = Daemon(other, bank=rig.bank)
        with pytest.raises(KioskError, match="Another daemon is using the ledger"):
            await second.start()
        c = await client(rig)
        assert (await c.call("hello"))["api"] == 1  # the first daemon is untouched
        await c.close()
