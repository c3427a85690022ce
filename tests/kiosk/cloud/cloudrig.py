"""Helpers of the cloud-link tests: contract schemas, a daemon with the link, waits, snapshots."""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.broker import Broker
from support.daemon_rig import DaemonRig

from kiosk.cloud.link import LinkTiming
from kiosk.cloud.mqtt import Endpoint
from kiosk.config.model import MqttConfig
from kiosk_cloud.client import CloudClient

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "mqtt-asyncapi.yaml"
PREFIX = "lockers/v1"
SITE = "rig-01"
FAST = LinkTiming(
    backoff_first_s=0.05,
    backoff_max_s=0.4,
    connack_timeout_s=3.0,
    tick_s=0.02,
    state_check_s=0.05,
    stop_wait_s=1.0,
)


# --- the contract's JSON Schemas ----------------------------------------------


class Contract:
    """Validators for the payload schemas of docs/mqtt-asyncapi.yaml."""

    def __init__(self) -> None:
        self.doc = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
        self.messages = self.doc["channels"]["events"]["messages"]

    def validator(self, schema_name: str) -> jsonschema.Draft7Validator:
        root = {
            "$ref": f"#/components/schemas/{schema_name}",
            "components": self.doc["components"],
        }
        return jsonschema.Draft7Validator(root, format_checker=jsonschema.FormatChecker())

    def schema_of_message(self, ref: str) -> str:
        message = self.doc["components"]["messages"][ref.rsplit("/", 1)[-1]]
        return message["payload"]["$ref"].rsplit("/", 1)[-1]

    def check_event(self, event: dict[str, Any]) -> None:
        ref = self.messages.get(event.get("type"))
        assert ref is not None, f"event type {event.get('type')!r} is not in the AsyncAPI doc"
        self.validator(self.schema_of_message(ref["$ref"])).validate(event)

    def check(self, schema_name: str, data: Any) -> None:
        self.validator(schema_name).validate(data)


# --- broker, keys, daemon, cloud ------------------------------------------------


def write_public_key(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def mqtt_config(broker: Broker, tls: bool = False, **kw: Any) -> MqttConfig:
    """The kiosk's link (MQTT 5) to `broker`: its mutual-TLS listener, or plain (`tls = false`)."""
    broker.require("mqtt5")
    if tls:
        assert broker.certs is not None and broker.tls_port is not None
        c = broker.certs
        return MqttConfig(
            "127.0.0.1", broker.tls_port, PREFIX, c.ca, c.client_cert, c.client_key, **kw
        )
    return MqttConfig("127.0.0.1", broker.port, PREFIX, **{"tls": False, **kw})


class CloudRig(DaemonRig):
    """DaemonRig (GPIO mock bank, real ledger, real socket) with the cloud link configured."""

    def __init__(self, state: Path, mqtt: MqttConfig, cloud_key: Ed25519PrivateKey, **kw: Any):
        state.mkdir(parents=True, exist_ok=True)
        super().__init__(state, **kw)
        pem = write_public_key(cloud_key, state / "cloud-ed25519.pem")
        self.config = replace(
            self.config, mqtt=mqtt, keys=replace(self.config.keys, cloud_public_key_file=pem)
        )
        self.daemon.config = self.config
        self.daemon.cloud_timing = FAST

    @property
    def link(self):  # type: ignore[no-untyped-def]
        return self.daemon.link

    @property
    def ledger(self):  # type: ignore[no-untyped-def]
        return self.daemon.ledger

    def listening(self) -> bool:
        """Commands published from now on reach the daemon (SUBACK seen, not just CONNACK)."""
        return self.daemon.link is not None and self.daemon.link.listening


def cloud_client(broker: Broker, key: Ed25519PrivateKey | None = None, **kw: Any) -> CloudClient:
    return CloudClient(Endpoint("127.0.0.1", broker.port), PREFIX, key, **kw).connect()


# --- waiting and snapshots ------------------------------------------------------


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def result_of(cloud: CloudClient, jti: str, timeout: float = 10.0) -> dict[str, Any]:
    body = await asyncio.to_thread(cloud.wait_result, jti, timeout)
    assert body is not None, f"no command.result for {jti}"
    return body


STATE_TABLES = (
    "lockers",
    "parcels",
    "codes",
    "door_ops",
    "technicians",
    "inbox",
    "audit",
    "limiter",
    "pin_limiter",
)


def snapshot(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every state table (not the outbox: it carries the answers), read on a second connection."""
    conn = sqlite3.connect(str(db))
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in STATE_TABLES}
    finally:
        conn.close()


def outbox_types(db: Path | str) -> list[str]:
    conn = sqlite3.connect(str(db))
    try:
        return [r[0] for r in conn.execute("SELECT type FROM outbox ORDER BY seq")]
    finally:
        conn.close()


def events_in(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages if m.topic.endswith("/events")]


class Observer:
    """The cloud's event subscriber; reconnects (subscribed again) when asked."""

    def __init__(self, broker, persistent: bool = False) -> None:
        self.broker = broker
        self.persistent = persistent
        self.seqs: list[int] = []
        self.ids: dict[int, str] = {}
        self.client = None

    def connect(self) -> None:
        kw = {"client_id": "observer", "clean_session": False} if self.persistent else {}
        self.client = cloud_client(self.broker, **kw)
        self.client.subscribe(f"{PREFIX}/{SITE}/events")

    def take(self) -> int:
        assert self.client is not None
        while True:
            try:
                m = self.client.messages.get_nowait()
            except queue.Empty:
                return len(set(self.seqs))
            event = json.loads(m.payload)
            self.seqs.append(event["seq"])
            assert self.ids.setdefault(event["seq"], event["id"]) == event["id"]

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def check_complete(self, first: int, last: int) -> None:
        """Every seq first..last arrived; in order, apart from resent duplicates."""
        assert set(self.seqs) >= set(range(first, last + 1)), (
            f"missing {sorted(set(range(first, last + 1)) - set(self.seqs))[:20]}"
        )
        high = 0
        for seq in self.seqs:  # a repeat may go back (a resend), a new seq never skips
            if seq > high:
                assert seq == high + 1 or high == 0, f"gap after {high}: {seq}"
                high = seq


def queue_events(ledger, n: int, type_: str = "door.closed") -> tuple[int, int]:
    """n outbox rows in one transaction (as fast as a fixture can); returns their seq range."""
    now = datetime.now(UTC)
    with ledger.tx():
        first = ledger.outbox.last_seq() + 1
        for i in range(n):
            ledger.outbox.add(
                now, type_, {"label": "A-1", "parcel_id": None, "reason": f"bulk {i}"}
            )
    return first, ledger.outbox.last_seq()
