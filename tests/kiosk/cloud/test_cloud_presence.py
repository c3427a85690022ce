"""The retained state carries each locker's presence (contract v1.1), and the presence
events reach the cloud on the contract; a real broker, gpio presence_pins on mock pins."""

from __future__ import annotations

import asyncio
import json
import queue
import time
from typing import Any

from cloudrig import CloudRig, mqtt_config, wait_for


def next_on(cloud: Any, topic: str, want: Any, timeout: float = 15.0) -> dict[str, Any]:
    """The first message on `topic` (state, events) whose payload `want` accepts."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = cloud.messages.get(timeout=left)
        except queue.Empty:
            break
        if message.topic.endswith("/" + topic):
            payload = json.loads(message.payload)
            if want(payload):
                return payload
    raise AssertionError(f"no such {topic} message in time")


def next_state(cloud: Any, want: Any) -> dict[str, Any]:
    return next_on(cloud, "state", want)


def both(cloud: Any, timeout: float = 15.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The locker.needs_check event and the state showing C-1 occupied and flagged, in
    whatever order they arrive."""
    event: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout
    while event is None or state is None:
        left = deadline - time.monotonic()
        assert left > 0, f"event {event is not None}, state {state is not None}: not in time"
        try:
            message = cloud.messages.get(timeout=left)
        except queue.Empty:
            continue
        payload = json.loads(message.payload)
        if message.topic.endswith("/events") and payload["type"] == "locker.needs_check":
            event = payload
        elif (
            message.topic.endswith("/state")
            and payload["presence"].get("C-1") is True
            and payload["lockers"]["L"]["available"] == 0
        ):
            state = payload
    return event, state


async def test_state_snapshot_carries_presence_and_events_follow_the_contract(
    tmp_path, broker, cloud_key, cloud, contract
):
    async with CloudRig(tmp_path / "kiosk", mqtt_config(broker), cloud_key, presence=True) as rig:
        await wait_for(lambda: rig.daemon.online())
        state = await asyncio.to_thread(
            next_state, cloud, lambda s: s.get("presence", {}).get("A-1") is False
        )
        contract.check("State", state)
        assert set(state["presence"]) == {"A-1", "A-2", "B-1", "C-1"}
        rig.put("C-1")  # something left in a free locker
        event, state = await asyncio.to_thread(both, cloud)
        contract.check_event(event)
        assert event["body"] == {"label": "C-1", "reason": "occupied_while_available"}
        assert rig.ledger.parcels.locker("C-1").needs_check
        contract.check("State", state)
        assert state["lockers"]["L"]["available"] == 0  # flagged: not handed out
