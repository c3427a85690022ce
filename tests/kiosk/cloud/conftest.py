"""Cloud-link fixtures: a real broker, the cloud's keys, a daemon wired to both, a cloud client."""

from __future__ import annotations

import asyncio

import pytest
from cloudrig import (
    PREFIX,
    SITE,
    CloudRig,
    Contract,
    cloud_client,
    mqtt_config,
    wait_for,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.broker import Broker


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def cloud_key(tmp_path) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def rig(tmp_path, broker, cloud_key):
    async with CloudRig(tmp_path / "kiosk", mqtt_config(broker), cloud_key) as r:
        await wait_for(r.listening)
        yield r


@pytest.fixture
async def cloud(broker, cloud_key):
    client = await asyncio.to_thread(cloud_client, broker, cloud_key)
    await asyncio.to_thread(client.subscribe, f"{PREFIX}/{SITE}/#")
    yield client
    await asyncio.to_thread(client.close)
