"""TLS unless told otherwise: no `tls` key means TLS (system CAs); `tls = false` is plain TCP."""

from __future__ import annotations

import logging

import pytest
from cloudrig import PREFIX, CloudRig, wait_for

from kiosk.cloud.mqtt import is_loopback
from kiosk.config.model import MqttConfig

PLAIN_WARNING = "mqtt.tls = false"


def plain_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if PLAIN_WARNING in r.getMessage()]


async def test_no_tls_key_means_tls_checked_with_the_system_cas(
    tmp_path, broker, cloud_key, monkeypatch
):
    """No ca_file and no tls key: TLS, the broker checked against the system's CAs.

    The test CA stands in for the system's through OpenSSL's own SSL_CERT_FILE.
    """
    broker.require("tls")
    assert broker.certs is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(broker.certs.ca))
    mqtt = MqttConfig("127.0.0.1", broker.server_tls_port, PREFIX)  # no tls, no ca_file
    async with CloudRig(tmp_path / "kiosk", mqtt, cloud_key) as rig:
        await wait_for(rig.listening, timeout=15)
        assert rig.link.endpoint.uses_tls


async def test_no_tls_key_never_talks_in_clear_to_a_plain_listener(
    tmp_path, broker, cloud_key, caplog
):
    broker.require("tls")
    mqtt = MqttConfig("127.0.0.1", broker.port, PREFIX)  # the plain listener, no tls key
    async with CloudRig(tmp_path / "kiosk", mqtt, cloud_key) as rig:
        await wait_for(
            lambda: any("cannot connect" in r.getMessage() for r in caplog.records), timeout=15
        )
        assert not rig.daemon.online() and rig.link.connections == 0
    # the broker never saw an MQTT CONNECT from the kiosk: its TLS hello is all it got
    assert "as kiosk-rig-01" not in broker.log.read_text()


async def test_tls_false_on_loopback_connects_plain_without_a_warning(
    tmp_path, broker, cloud_key, caplog
):
    broker.require("mqtt5")
    mqtt = MqttConfig("127.0.0.1", broker.port, PREFIX, tls=False)
    async with CloudRig(tmp_path / "kiosk", mqtt, cloud_key) as rig:
        await wait_for(rig.listening, timeout=15)
        assert not rig.link.endpoint.uses_tls
    assert plain_warnings(caplog) == []


async def test_tls_false_to_another_host_connects_plain_and_warns(
    tmp_path, broker, cloud_key, caplog
):
    """A broker named by an address that is not loopback gets the plain-TCP warning.

    0.0.0.0 is such an address (unspecified, not loopback), yet Linux connects to it
    on this very host, so the test's traffic never leaves the loopback interface.
    """
    host = "0.0.0.0"
    assert not is_loopback(host)
    broker.require("mqtt5")
    mqtt = MqttConfig(host, broker.port, PREFIX, tls=False)
    caplog.set_level(logging.WARNING)
    async with CloudRig(tmp_path / "kiosk", mqtt, cloud_key) as rig:
        await wait_for(rig.listening, timeout=15)
        assert not rig.link.endpoint.uses_tls
    [warning] = plain_warnings(caplog)
    assert f"{host}:{broker.port} is plain TCP" in warning


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.0.2.2", False),
        ("broker.example", False),
        ("10.0.0.1", False),
    ],
)
def test_what_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback
