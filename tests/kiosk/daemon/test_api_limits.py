"""The API server's limits: connections served at once are capped, idle ones are closed.

A second ApiServer with small limits runs beside the rig's daemon, on the
same Api (the same service and ledger), on its own socket.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support.daemon_rig import DaemonRig

from kiosk.api.server import ApiServer, Hub

DEADLINE_S = 30.0  # generous: the machine is shared; nothing asserts on elapsed time


@pytest.fixture
async def rig(tmp_path):
    async with DaemonRig(tmp_path) as r:
        yield r


async def served(rig: DaemonRig, path: Path, hub: Hub, **limits: float) -> ApiServer:
    assert rig.daemon.server is not None
    server = ApiServer(rig.daemon.server.api, path, hub, **limits)  # type: ignore[arg-type]
    await server.start()
    return server


async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> dict:
    writer.write(json.dumps({"id": n, "call": "hello"}).encode() + b"\n")
    await writer.drain()
    return json.loads(await asyncio.wait_for(reader.readline(), DEADLINE_S))


async def test_connections_past_the_cap_wait_in_the_queue_and_get_in_when_one_ends(rig, tmp_path):
    server = await served(rig, tmp_path / "capped.sock", Hub(), max_connections=2)
    try:
        first = await asyncio.open_unix_connection(str(server.path))
        second = await asyncio.open_unix_connection(str(server.path))
        assert (await hello(*first, 1))["ok"] and (await hello(*second, 2))["ok"]
        third_reader, third_writer = await asyncio.open_unix_connection(str(server.path))
        third_writer.write(json.dumps({"id": 3, "call": "hello"}).encode() + b"\n")
        await third_writer.drain()
        assert server.connections == 2  # the third is queued, not accepted
        first[1].close()  # one ends: the queued one is accepted and answered
        reply = json.loads(await asyncio.wait_for(third_reader.readline(), DEADLINE_S))
        assert reply["id"] == 3 and reply["ok"]
        assert server.connections == 2
        for writer in (second[1], third_writer):
            writer.close()
    finally:
        await server.close()


async def test_an_idle_connection_is_closed_and_a_subscriber_is_not(rig, tmp_path):
    hub = Hub()
    server = await served(rig, tmp_path / "idle.sock", hub, idle_timeout_s=0.2)
    try:
        listener = await asyncio.open_unix_connection(str(server.path))
        reader, writer = listener
        writer.write(b'{"id": 1, "call": "subscribe"}\n')
        await writer.drain()
        assert json.loads(await asyncio.wait_for(reader.readline(), DEADLINE_S))["ok"]
        idle_reader, idle_writer = await asyncio.open_unix_connection(str(server.path))
        assert (await hello(idle_reader, idle_writer, 2))["ok"]
        # The idle one is closed by the server (EOF) ...
        assert await asyncio.wait_for(idle_reader.read(), DEADLINE_S) == b""
        idle_writer.close()
        # ... while the subscriber, idle longer still, keeps getting events.
        hub.publish("test.event", {"n": 1})
        event = json.loads(await asyncio.wait_for(reader.readline(), DEADLINE_S))
        assert event == {"event": "test.event", "data": {"n": 1}}
        writer.close()
    finally:
        await server.close()
