"""The keypad's offline badge, driven by the daemon's real cloud link to a real broker."""

from __future__ import annotations

import re
from dataclasses import replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.broker import Broker
from support.daemon_rig import DaemonRig
from ui_support import at_keypad, screen_text, until

from kiosk.cloud.link import LinkTiming
from kiosk.config.model import MqttConfig
from kiosk.ui.widgets import TopBar

QUICK = LinkTiming(
    backoff_first_s=0.05,
    backoff_max_s=0.4,
    connack_timeout_s=3.0,
    tick_s=0.02,
    state_check_s=0.05,
    stop_wait_s=1.0,
)


def with_cloud_link(state, broker: Broker) -> DaemonRig:
    """A DaemonRig whose daemon also runs its cloud link to `broker`."""
    broker.require("mqtt5")
    state.mkdir(parents=True, exist_ok=True)
    rig = DaemonRig(state)
    pem = state / "cloud-ed25519.pem"
    pem.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    rig.config = replace(
        rig.config,
        mqtt=MqttConfig("127.0.0.1", broker.port, "lockers/v1", tls=False),
        keys=replace(rig.config.keys, cloud_public_key_file=pem),
    )
    rig.daemon.config = rig.config
    rig.daemon.cloud_timing = QUICK
    return rig


async def test_the_badge_follows_the_broker_going_and_coming_back(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    try:
        rig = with_cloud_link(tmp_path / "kiosk", broker)
        async with rig, at_keypad(rig.socket, status_s=0.1) as (app, pilot):
            bar = app.screen.query_one(TopBar)
            await until(pilot, lambda: bar.has_class("online"), what="online")
            assert "offline" not in screen_text(app)
            broker.kill()  # the link drops: the bank works on, the badge says so
            await until(pilot, lambda: not bar.has_class("online"), what="offline badge")
            # ... and for how long (the daemon counts from the moment the link dropped)
            await until(pilot, lambda: "offline for" in screen_text(app), what="how long")
            assert re.search(r"offline for \d+ (s|min)", screen_text(app))
            broker.start()
            await until(pilot, lambda: bar.has_class("online"), timeout=15, what="back online")
            assert "offline" not in screen_text(app)
    finally:
        broker.stop()
