"""A door close, seen by the daemon's door scan, to its event at a cloud subscriber (real broker).

A real `Daemon` in the bench process (`bench.daemon.write_site`: one
`simulated` bus, the built-in board on a real pty through the real Modbus
backend, 16 S lockers, the shipped 100 ms poll, the ledger on disk) with its
cloud link to a Mosquitto the bench starts on 127.0.0.1. The link's timing is
the shipped default (`LinkTiming()`: a 100 ms tick). A bare paho subscriber
on its own thread (`loop_start`) takes the site's `events` topic and notes
`perf_counter_ns` in `on_message`.

Per sample: a parcel's delivery (or pickup) code opens a door (untimed); the
bench shuts the door on the simulated board; the door scan that first reads
it shut is noted as it returns (a pass-through of the daemon's lock bank);
the clock stops when that locker's `door.closed` event, committed in the
same transaction as the delivery or pickup, reaches the subscriber. Between
the two: the closing's one fsync'd commit, the link's wake-up, paho's
publish, the broker, the subscriber's thread. A closing that commits just
before a scan of the next door only delays the next sample, not this one.
"""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from bench.cloud import PREFIX, _mosquitto
from bench.daemon import API_LOCKERS, write_site
from bench.stats import MS, summarise
from firmware_bridge.bank import ChannelRef, DoorState, LockBank
from kiosk.cloud.mqtt import no_delay
from kiosk.config.loader import load_config
from kiosk.config.model import MqttConfig
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier
from kiosk.domain.sizes import Size
from kiosk.wiring import build_lock_bank

SITE_ID = "bench-01"  # bench.daemon.write_site's
EVENT_TIMEOUT_S = 10.0


class _Scans:
    """The daemon's lock bank, passed through; notes when a scan first reads `watch` shut."""

    def __init__(self, inner: LockBank) -> None:
        self.inner = inner
        self.watch: ChannelRef | None = None
        self.seen_ns = 0

    async def read_doors(self, units: Any = None) -> dict[ChannelRef, DoorState]:
        states = await self.inner.read_doors(units)
        if self.watch is not None and not self.seen_ns and states.get(self.watch) is DoorState.SHUT:
            self.seen_ns = time.perf_counter_ns()
        return states

    def __getattr__(self, name: str) -> Any:  # start, close, unlock, describe, banks ...
        return getattr(self.inner, name)


class _Subscriber:
    """Bare paho on its own thread: (arrival perf_counter_ns, event) for every event."""

    def __init__(self, port: int, topic: str) -> None:
        self.got: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_socket_open = no_delay
        self.client.on_message = lambda _c, _u, m: self.got.put(
            (time.perf_counter_ns(), json.loads(m.payload))
        )
        subscribed = queue.Queue[int]()
        self.client.on_subscribe = lambda *_: subscribed.put(1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        subscribed.get(timeout=10)

    def wait(self, type_: str, label: str) -> int:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, event = self.got.get(timeout=left)
            except queue.Empty:
                break
            if event.get("type") == type_ and (event.get("body") or {}).get("label") == label:
                return at
        raise RuntimeError(f"no {type_} event for {label} at the subscriber")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _flows(config_path: Path, port: int, flows: int) -> dict[str, Any]:
    config = load_config(config_path)
    key = Ed25519PrivateKey.generate().public_key()
    pem = config_path.parent / "cloud-ed25519.pem"
    pem.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = replace(
        config,
        mqtt=MqttConfig("127.0.0.1", port, PREFIX, tls=False),
        keys=replace(config.keys, cloud_public_key_file=pem),
    )
    where = {lk.label: ChannelRef(lk.bus, lk.unit, lk.channel) for lk in config.lockers}
    bank = _Scans(build_lock_bank(config))
    daemon = Daemon(config, bank=bank, notifier=Notifier(""))  # type: ignore[arg-type]
    subscriber = await asyncio.to_thread(_Subscriber, port, f"{PREFIX}/{SITE_ID}/events")
    samples: list[int] = []
    await daemon.start()
    try:
        deadline = time.monotonic() + 10
        while not daemon.online():
            if time.monotonic() > deadline:
                raise RuntimeError("the cloud link did not connect")
            await asyncio.sleep(0.01)
        service = daemon.service
        assert service is not None
        sim = bank.inner.banks["sim"].sim  # type: ignore[attr-defined]
        parcels = [service.announce(Size.S) for _ in range(flows // 2 + 1)]
        codes: list[str] = []
        for first in range(0, len(parcels), API_LOCKERS):
            batch = parcels[first : first + API_LOCKERS]
            codes += [p.delivery_code for p in batch] + [p.pickup_code for p in batch]
        for code in codes[:flows]:
            opened = await service.submit_code(code)
            ref = where[opened.locker]
            await asyncio.to_thread(subscriber.wait, "door.opened", opened.locker)
            bank.watch, bank.seen_ns = ref, 0
            sim[ref.unit].close(ref.channel)
            arrived = await asyncio.to_thread(subscriber.wait, "door.closed", opened.locker)
            if not bank.seen_ns or arrived < bank.seen_ns:
                raise RuntimeError(f"{opened.locker}: event before the scan saw the door shut")
            samples.append(arrived - bank.seen_ns)
            bank.watch = None
    finally:
        await daemon.stop()
        await asyncio.to_thread(subscriber.close)
    return {"flows": len(samples), "close_to_event_ms": summarise(samples, MS)}


def run(workdir: Path, flows: int = 200) -> dict[str, Any]:
    """`flows` door closings (deliveries then pickups, 16 at a time), each timed to its event."""
    started = _mosquitto(workdir)
    if started is None:
        return {"skipped": "no mosquitto binary (apt-get install mosquitto)"}
    proc, port = started
    sockets = Path(tempfile.mkdtemp(prefix="kb-"))  # a short path for the socket
    try:
        config = write_site(workdir / "events", sockets / "k.sock", API_LOCKERS, 0)
        return asyncio.run(_flows(config, port, flows))
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(sockets, ignore_errors=True)


def table(result: dict[str, Any]) -> list[str]:
    if "skipped" in result:
        return [f"Door close -> event: skipped ({result['skipped']})"]
    s = result["close_to_event_ms"]
    return [
        "Door close -> event: a real daemon (simulated Modbus bus on a pty, 100 ms poll, ledger "
        "on disk), Mosquitto on 127.0.0.1, shipped link timing (100 ms tick)",
        "",
        "| measure | n | p50 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- |",
        f"| door scan reads it shut -> door.closed at a subscriber | {s['n']} | "
        f"{s['p50']:.2f} | {s['p99']:.2f} | {s['max']:.2f} |",
        "",
        f"Target: under 20 ms median: {'met' if s['p50'] < 20 else 'MISSED'} ({s['p50']:.2f} ms)",
    ]
