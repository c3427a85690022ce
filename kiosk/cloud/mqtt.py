"""Making paho clients the same way on both sides: callback API 2, MQTT 3.1.1 or 5, TLS if asked."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

#: MQTT 5 Session Expiry Interval meaning "never": the session lives as a 3.1.1 persistent one.
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


@dataclass(frozen=True)
class Endpoint:
    """Where a broker is and how to prove who we are to it."""

    host: str
    port: int
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls: bool = False  # TLS with the system's CAs even without ca_file

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context (TLS 1.2+, broker certificate and host name checked), or None."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return context


def parse_hostport(text: str, default_port: int = 1883) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port`."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1): traffic that stays here."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def connect_properties(max_packet_bytes: int) -> Properties:
    """MQTT 5 CONNECT properties: a persistent session, and the largest packet we accept.

    With Maximum Packet Size the broker itself drops (never sends) a bigger
    message to us (MQTT 5, 3.1.2.11.4), so an oversized payload costs the
    kiosk neither bandwidth nor parsing, and does not break the connection.
    """
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    props.MaximumPacketSize = max_packet_bytes
    return props


def new_client(
    client_id: str,
    endpoint: Endpoint,
    context: ssl.SSLContext | None = None,
    clean_session: bool = True,
    manual_ack: bool = False,
    mqtt5: bool = False,
) -> paho.Client:
    """A client that never reconnects by itself (the caller owns back-off).

    `mqtt5`: speak MQTT 5; the session is then chosen at connect time
    (`clean_start`, `connect_properties`), so `clean_session` is not used.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if mqtt5 else clean_session,
        protocol=paho.MQTTv5 if mqtt5 else paho.MQTTv311,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    context = context or endpoint.ssl_context()
    if context is not None:
        client.tls_set_context(context)
    client.on_socket_open = no_delay
    return client


def no_delay(_client: Any, _userdata: Any, sock: Any) -> None:
    """TCP_NODELAY: without it a PUBACK followed by a PUBLISH waits ~40 ms for a delayed ACK."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
