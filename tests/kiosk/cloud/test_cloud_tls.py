"""Mutual TLS: the daemon reaches the broker's TLS listener with its client certificate."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace

import pytest
from cloudrig import CloudRig, Observer, mqtt_config, queue_events, wait_for

from kiosk.cloud.mqtt import Endpoint
from kiosk_cloud.client import CloudClient, CloudError


async def test_link_over_mutual_tls(tmp_path, broker, cloud_key):
    broker.require("tls")
    rig = CloudRig(tmp_path / "kiosk", mqtt_config(broker, tls=True), cloud_key)
    async with rig:
        await wait_for(rig.listening, timeout=10)
        assert rig.link.endpoint.uses_tls
        rig.daemon.service.set_service("C-1", False, "tls test")
        await wait_for(lambda: rig.ledger.outbox.depth() == 0)


async def test_backlog_drains_in_order_over_tls(tmp_path, broker, cloud_key):
    """The loop reads and writes the TLS socket itself (kiosk.cloud.onloop): a backlog goes
    up whole and in order, on one connection (no stall that a keepalive would end)."""
    broker.require("tls")
    observer = Observer(broker)
    await asyncio.to_thread(observer.connect)
    rig = CloudRig(tmp_path / "kiosk", mqtt_config(broker, tls=True), cloud_key)
    try:
        async with rig:
            await wait_for(rig.listening, timeout=10)
            await wait_for(lambda: rig.ledger.outbox.depth() == 0)
            first, last = queue_events(rig.ledger, 3000)
            await wait_for(lambda: rig.ledger.outbox.depth() == 0, timeout=30, step=0.05)
            await wait_for(lambda: observer.take() >= 3000, timeout=20, step=0.05)
            assert rig.link.connections == 1  # no stall ended in a keepalive reconnect
    finally:
        await asyncio.to_thread(observer.close)
    observer.check_complete(first, last)
    assert observer.seqs == sorted(observer.seqs)


def test_broker_refuses_a_client_without_certificate(broker):
    broker.require("tls")
    c = broker.certs
    no_cert = CloudClient(Endpoint("127.0.0.1", broker.tls_port, ca_file=c.ca))
    with pytest.raises((CloudError, ssl.SSLError, OSError)):
        no_cert.connect(timeout=2)
        no_cert.close()
    wrong_ca = Endpoint("127.0.0.1", broker.tls_port, c.other_ca, c.client_cert, c.client_key)
    with pytest.raises((CloudError, ssl.SSLError)):
        CloudClient(wrong_ca).connect(timeout=2)
    good = Endpoint("127.0.0.1", broker.tls_port, c.ca, c.client_cert, c.client_key)
    CloudClient(good).connect(timeout=5).close()


async def test_unreadable_certificate_fails_at_start(tmp_path, broker, cloud_key):
    from kiosk.domain.errors import ConfigError

    broker.require("tls")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    cfg = mqtt_config(broker, tls=True)
    rig = CloudRig(tmp_path / "kiosk", replace(cfg, cert_file=bad), cloud_key)
    try:
        with pytest.raises(ConfigError, match="TLS files"):
            await rig.__aenter__()
    finally:
        await rig.__aexit__(None, None, None)
