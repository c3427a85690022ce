"""A signed reservation, a delivery and a pickup, seen from the cloud: all on the contract."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from cloudrig import SITE, events_in, result_of, wait_for

from kiosk.domain.codes import code_digest, draw_code

#: Generous: the broker forwards on its own time on a loaded machine. Nothing waits it out.
WAIT_S = 20.0


def receive_until(client: Any, done: Callable[[list[Any]], bool]) -> list[Any]:
    """Messages off `client`'s subscriptions until `done(messages so far)`, not until some
    fixed quiet spell: a broker that forwards late must not make a message look missing."""
    messages: list[Any] = []
    for message in client.receive(timeout=WAIT_S):
        messages.append(message)
        if done(messages):
            break
    return messages


async def test_reservation_delivery_pickup_over_mqtt(rig, cloud, contract):
    key = rig.daemon.service.ctx.code_key
    delivery, pickup = draw_code(6, lambda c: False), draw_code(6, lambda c: False)
    args = {
        "parcel_id": "P-1",
        "order_id": "O-1",
        "size": "M",
        "deliver_by": None,
        "delivery_digest": code_digest(key, delivery),
        "pickup_digest": code_digest(key, pickup),
    }
    jti = await asyncio.to_thread(cloud.send, SITE, "reservation.create", args)
    body = await result_of(cloud, jti)
    assert body == {"command_id": jti, "cmd": "reservation.create", "ok": True, "error": None}
    assert rig.ledger.parcels.get("P-1").status.value == "EXPECTED"

    service = rig.daemon.service
    opened = await service.submit_code(delivery)
    assert opened.locker == "B-1"
    rig.doors.close("B-1")
    await wait_for(lambda: rig.ledger.parcels.get("P-1").status.value == "DELIVERED")
    await service.submit_code(pickup)
    rig.doors.close("B-1")
    await wait_for(lambda: rig.ledger.parcels.get("P-1").status.value == "PICKED_UP")
    await wait_for(lambda: rig.ledger.outbox.depth() == 0)

    wanted = {"door.opened", "door.closed", "parcel.delivered", "parcel.picked_up"}
    messages = await asyncio.to_thread(
        receive_until, cloud, lambda got: wanted <= {e["type"] for e in events_in(got)}
    )
    events = events_in(messages)
    types = [e["type"] for e in events]
    assert wanted <= set(types), types
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for event in events:
        contract.check_event(event)
    delivered = next(e for e in events if e["type"] == "parcel.delivered")
    assert delivered["body"]["parcel_id"] == "P-1" and delivered["body"]["locker"] == "B-1"
    for m in messages:
        if m.topic.endswith("/state"):
            contract.check("State", json.loads(m.payload))
        elif m.topic.endswith("/status"):
            contract.check("Status", json.loads(m.payload))


async def test_birth_and_state_are_retained(rig, broker, contract):
    from cloudrig import cloud_client

    late = await asyncio.to_thread(cloud_client, broker)
    try:
        await asyncio.to_thread(late.subscribe, f"lockers/v1/{SITE}/+")
        retained = await asyncio.to_thread(
            receive_until, late, lambda got: {"status", "state"} <= {topic_end(m) for m in got}
        )
        got = {topic_end(m): m for m in retained}
    finally:
        await asyncio.to_thread(late.close)
    assert got["status"].retain and json.loads(got["status"].payload)["online"] is True
    state = json.loads(got["state"].payload)
    contract.check("State", state)
    assert state["site"] == SITE and state["location"]["lat"] == 52.5
    assert state["lockers"]["S"] == {"total": 2, "available": 2, "out_of_service": 0}
    assert rig.daemon.online() is True
    assert rig.daemon.last_contact() is not None  # what `kiosk status` shows as last contact


def topic_end(message: Any) -> str:
    return str(message.topic.rsplit("/", 1)[-1])
