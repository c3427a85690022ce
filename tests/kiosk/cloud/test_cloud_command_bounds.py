"""Bounds on what a command may be: no bigger than the kiosk's MQTT 5 Maximum Packet Size,
and no longer-lived (exp - iat) than policy.command_max_lifetime_s."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from cloudrig import (
    FAST,
    PREFIX,
    SITE,
    CloudRig,
    cloud_client,
    mqtt_config,
    result_of,
    snapshot,
    wait_for,
)

from kiosk.clock import SystemClock
from kiosk.cloud.commands import Outcome
from kiosk.cloud.link import MAX_PACKET_BYTES, CloudLink
from kiosk.config.model import SiteConfig
from kiosk.ledger.db import Ledger
from kiosk_cloud.signing import sign


class Recorder:
    """Stands in for the command handler: keeps every payload the link hands over."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    async def handle(self, payload: bytes) -> Outcome:
        self.payloads.append(bytes(payload))
        return Outcome(None, None)


async def test_an_oversized_command_never_reaches_the_kiosk(tmp_path, broker, cloud_key):
    broker.require("mqtt5")
    cloud = await asyncio.to_thread(cloud_client, broker)
    await asyncio.to_thread(cloud.subscribe, f"{PREFIX}/{SITE}/status")
    recorder = Recorder()
    ledger = Ledger.open(tmp_path / "ledger.db")
    link = CloudLink(
        mqtt_config(broker),
        SiteConfig(SITE),
        ledger,
        recorder,  # type: ignore[arg-type]
        SystemClock(),
        "test",
        FAST,
    )
    await link.start()
    try:
        # The birth comes after the SUBSCRIBE on the same connection: once the cloud sees
        # it, the broker has the kiosk's subscription.
        def born() -> bool:
            while not cloud.messages.empty():
                if json.loads(cloud.messages.get_nowait().payload).get("online") is True:
                    return True
            return False

        await wait_for(born)
        _, token = sign(
            cloud_key,
            SITE,
            "door.open",
            {"label": "A-1", "reason": "x" * 70_000},
            datetime.now(UTC),
        )
        assert len(token) > MAX_PACKET_BYTES
        topic = f"{PREFIX}/{SITE}/commands"
        await asyncio.to_thread(cloud.publish, topic, token.encode())
        await asyncio.to_thread(cloud.publish, topic, b"small")
        # Delivery keeps the order of one publisher on one topic: the big one came first.
        await wait_for(lambda: b"small" in recorder.payloads)
        assert recorder.payloads == [b"small"]
        assert link.online and link.connections == 1  # the link never dropped
    finally:
        await link.stop()
        await asyncio.to_thread(cloud.close)
        ledger.close()


async def test_a_command_living_longer_than_the_cap_is_refused(tmp_path, broker, cloud_key, cloud):
    rig = CloudRig(
        tmp_path / "kiosk", mqtt_config(broker), cloud_key, policy={"command_max_lifetime_s": 600}
    )
    async with rig:
        await wait_for(rig.listening)
        await wait_for(lambda: rig.ledger.outbox.depth() == 0)
        before = snapshot(rig.config.ledger.path)
        now = datetime.now(UTC)
        args = {"label": "A-1", "reason": "support call"}
        jti, token = sign(cloud_key, SITE, "door.open", args, now, ttl_s=601)
        await asyncio.to_thread(cloud.publish, cloud.topics(SITE).commands, token.encode())
        body = await result_of(cloud, jti)
        assert body["ok"] is False and body["error"]["code"] == "expired", body
        assert "command_max_lifetime_s" in body["error"]["message"]
        assert snapshot(rig.config.ledger.path) == before  # not even the inbox
        assert rig.doors.pulses["A-1"] == 0
        # at the cap: accepted
        jti, token = sign(cloud_key, SITE, "door.open", args, now, ttl_s=600)
        await asyncio.to_thread(cloud.publish, cloud.topics(SITE).commands, token.encode())
        assert (await result_of(cloud, jti))["ok"] is True
        assert rig.doors.pulses["A-1"] == 1
