"""Events leave as soon as they commit: the outbox wakes the link, not its periodic tick.

The link's tick is made an hour long here, so it cannot fire during the
test: every event that reaches the cloud got there because its commit woke
the link.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from cloudrig import FAST, CloudRig, mqtt_config, wait_for

from kiosk.domain.sizes import Size

NEVER_S = 3600.0  # a tick, state check and outbox check that cannot come round in a test
SLOW = replace(FAST, tick_s=NEVER_S, state_check_s=NEVER_S, outbox_check_s=NEVER_S)


@pytest.fixture
async def slow_rig(tmp_path, broker, cloud_key):
    r = CloudRig(tmp_path / "kiosk", mqtt_config(broker), cloud_key)
    r.daemon.cloud_timing = SLOW
    async with r:
        await wait_for(r.listening)
        yield r


def until(cloud, wanted: set[str], timeout: float = 20.0) -> list[dict]:
    """Messages off the cloud's subscription until events of every `wanted` type came."""
    got: list[dict] = []
    for message in cloud.receive(timeout=timeout):
        if message.topic.endswith("/events"):
            got.append(json.loads(message.payload))
        else:
            got.append({"type": message.topic.rsplit("/", 1)[-1]})
        if wanted <= {e["type"] for e in got}:
            break
    return got


async def test_a_door_close_event_reaches_the_cloud_with_no_tick(slow_rig, cloud):
    rig = slow_rig
    # The connection's own publishes (birth, state) are through and acknowledged first,
    # so no PUBACK of theirs can be what sends the events below.
    assert {"status", "state"} <= {
        e["type"] for e in await asyncio.to_thread(until, cloud, {"status", "state"})
    }
    await wait_for(lambda: rig.link.last_contact is not None)

    parcel = rig.daemon.service.announce(Size.S)
    opened = await rig.daemon.service.submit_code(parcel.delivery_code)
    rig.doors.close(opened.locker)  # the daemon's door scan sees it and commits the delivery

    events = await asyncio.to_thread(
        until, cloud, {"door.opened", "door.closed", "parcel.delivered"}
    )
    types = [e["type"] for e in events if "seq" in e]
    assert {"door.opened", "door.closed", "parcel.delivered"} <= set(types), types
    seqs = [e["seq"] for e in events if "seq" in e]
    assert seqs == sorted(seqs)
    delivered = next(e for e in events if e["type"] == "parcel.delivered")
    assert delivered["body"]["locker"] == opened.locker
    await wait_for(lambda: rig.ledger.outbox.depth() == 0)  # acknowledged and deleted too
