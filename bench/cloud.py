"""The cloud link against a real Mosquitto: backlog drain rate vs raw paho, and command latency.

Drain: N events are queued in the outbox in one transaction (a ledger file on
disk, as shipped: WAL, synchronous=FULL) while the link is connected; the
clock runs until the last row is deleted after its PUBACK. Each event is read
from the table, encoded, published QoS 1 through the link's window, and
deleted in batches. The baseline, on the same broker in the same run, is
paho alone publishing N ready-made payloads of the same size at QoS 1 with
the same in-flight limit, timed until the last PUBACK. Rounds alternate
(raw, link, raw, link, ...) so both see the same machine.

Command latency: the cloud's side (`CloudClient`, paho) signs a
`reservation.create` and publishes it; timed to the ledger row (the inbox
row's timestamp, written in the command's transaction) and to the
`command.result` event arriving back at the cloud.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from bench.stats import MS, summarise
from firmware_bridge.gpio import GpioChannel, GpioLockBank
from kiosk.clock import SystemClock, from_text
from kiosk.cloud.commands import CommandHandler
from kiosk.cloud.link import CloudLink, LinkTiming
from kiosk.cloud.mqtt import Endpoint, no_delay
from kiosk.cloud.payloads import event_payload
from kiosk.cloud.tokens import Verifier
from kiosk.config.model import LockerConfig, MqttConfig, SiteConfig
from kiosk.domain.codes import code_digest
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.ledger.records import OutboxEvent
from kiosk.service.locker_service import LockerService
from kiosk_cloud.client import CloudClient

SITE = SiteConfig("bench-01", "Bench", "1 Bench St", 52.5, 13.4)
PREFIX = "lockers/v1"
BODY = {"label": "A-1", "parcel_id": "P-0123456789", "reason": "delivery"}
TIMING = LinkTiming(backoff_first_s=0.05, backoff_max_s=0.5, tick_s=0.02, state_check_s=0.5)


def _mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None
    )
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = workdir / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}allow_anonymous true\nset_tcp_nodelay true\nlistener {port} 127.0.0.1\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.01)
    proc.kill()
    return None


def raw_paho(port: int, payloads: list[bytes], inflight: int) -> float:
    """Seconds for paho alone to publish every payload QoS 1 and see every PUBACK."""
    done = threading.Event()
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.on_socket_open = no_delay  # the same socket option as the link's
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        started = time.perf_counter()
        for payload in payloads:
            client.publish(f"{PREFIX}/raw/events", payload, qos=1)
        if not done.wait(120):
            raise RuntimeError("raw paho: PUBACKs missing")
        return time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()


def _service(path: Path, key: bytes) -> LockerService:
    from gpiozero.pins.mock import MockFactory

    lockers = tuple(LockerConfig(f"A-{i + 1}", Size.M, "gpio", 1, i) for i in range(4))
    gpio = GpioLockBank(
        "gpio",
        [GpioChannel(i, 2 + i, 14 + i) for i in range(4)],
        60,
        500,
        pin_factory=MockFactory(),
    )
    return LockerService.build(Ledger.open(path), gpio, SystemClock(), key, lockers)


async def _link_run(
    workdir: Path, port: int, events: int, rounds: int, commands: int, window: int
) -> dict[str, Any]:
    key = os.urandom(32)
    cloud_key = Ed25519PrivateKey.generate()
    service = _service(workdir / "cloud-bench.db", key)
    ledger = service.ctx.ledger
    clock = SystemClock()
    handler = CommandHandler(service, ledger, Verifier(cloud_key.public_key(), SITE.id), clock)
    mqtt = MqttConfig("127.0.0.1", port, PREFIX, outbox_cap=10_000_000, tls=False)
    link = CloudLink(mqtt, SITE, ledger, handler, clock, "bench", TIMING, wire_inflight=window)
    ledger.outbox.on_committed(link.wake)  # as kiosk/cloud/wiring.py wires it
    sample = OutboxEvent.of(
        10**6,
        "00000000-0000-4000-8000-000000000000",
        "door.opened",
        "2026-11-24T12:00:00.000000Z",
        BODY,
    )
    payloads = [event_payload(sample)] * events
    raw_s: list[float] = []
    link_s: list[float] = []
    await link.start()
    try:
        while not link.online:
            await asyncio.sleep(0.01)
        for _ in range(rounds):
            raw_s.append(await asyncio.to_thread(raw_paho, port, payloads, window))
            now = datetime.now(UTC)
            with ledger.tx():
                for _ in range(events):
                    ledger.outbox.add(now, "door.opened", BODY)
            target = link.pump.acked + events
            started = time.perf_counter()
            while link.pump.acked < target:
                await asyncio.sleep(0.002)
            link.pump.flush()  # the last batch of deletes
            link_s.append(time.perf_counter() - started)
            if ledger.outbox.depth():
                raise RuntimeError("outbox not empty after the drain")
        latency = await _commands(port, cloud_key, key, ledger, commands)
    finally:
        await link.stop()
        ledger.close()
    best_raw, best_link = min(raw_s), min(link_s)
    return {
        "events": events,
        "window": window,
        "rounds": rounds,
        "raw_paho_s": raw_s,
        "link_s": link_s,
        "raw_paho_per_s": round(events / best_raw),
        "link_per_s": round(events / best_link),
        "ratio": round(best_raw / best_link, 3),
        "ratio_median": round(sorted(raw_s)[len(raw_s) // 2] / sorted(link_s)[len(link_s) // 2], 3),
        "command_ms": latency,
    }


async def _commands(
    port: int, cloud_key: Ed25519PrivateKey, key: bytes, ledger: Ledger, n: int
) -> dict[str, Any]:
    client = await asyncio.to_thread(
        CloudClient(Endpoint("127.0.0.1", port), PREFIX, cloud_key).connect
    )
    row_ns: list[int] = []
    answer_ns: list[int] = []
    try:
        await asyncio.to_thread(client.subscribe, f"{PREFIX}/{SITE.id}/events")
        for i in range(n):
            args = {
                "parcel_id": f"B-{i}",
                "size": "M",
                "delivery_digest": code_digest(key, f"{i:06d}"),
                "pickup_digest": code_digest(key, f"9{i:05d}"),
            }
            sent = time.time()
            t0 = time.perf_counter_ns()
            jti = await asyncio.to_thread(client.send, SITE.id, "reservation.create", args)
            body = await asyncio.to_thread(client.wait_result, jti, 10)
            answer_ns.append(time.perf_counter_ns() - t0)
            if body is None or not body["ok"]:
                raise RuntimeError(f"reservation.create failed: {body}")
            row = ledger.db.execute(
                "SELECT received_at FROM inbox WHERE command_id = ?", (jti,)
            ).fetchone()
            row_ns.append(int((from_text(row[0]).timestamp() - sent) * 1e9))
    finally:
        await asyncio.to_thread(client.close)
    return {"to_ledger_row": summarise(row_ns, MS), "to_result_at_cloud": summarise(answer_ns, MS)}


def run(
    workdir: Path, events: int = 20_000, rounds: int = 3, commands: int = 200, window: int = 20
) -> dict[str, Any]:
    started = _mosquitto(workdir)
    if started is None:
        return {"skipped": "no mosquitto binary (apt-get install mosquitto)"}
    proc, port = started
    try:
        return asyncio.run(_link_run(workdir, port, events, rounds, commands, window))
    finally:
        proc.terminate()
        proc.wait(5)


def cloud_table(result: dict[str, Any]) -> list[str]:
    if "skipped" in result:
        return [f"Cloud link: skipped ({result['skipped']})"]
    c = result["command_ms"]
    rows = [
        f"Cloud link: {result['events']:,} events per round, {result['rounds']} rounds, "
        f"window {result['window']} in flight, Mosquitto on 127.0.0.1",
        "",
        "| measure | best | all rounds |",
        "| --- | --- | --- |",
        f"| raw paho QoS 1, events/s | {result['raw_paho_per_s']:,} | "
        + ", ".join(f"{result['events'] / s:,.0f}" for s in result["raw_paho_s"])
        + " |",
        f"| link backlog drain (read, publish, PUBACK, delete), events/s | "
        f"{result['link_per_s']:,} | "
        + ", ".join(f"{result['events'] / s:,.0f}" for s in result["link_s"])
        + " |",
        f"| ratio link / raw (target >= 0.8) | {result['ratio']} | "
        f"median {result['ratio_median']} |",
        "",
        "| reservation.create | n | p50 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    measures = (
        ("published -> ledger row", "to_ledger_row"),
        ("published -> command.result at the cloud", "to_result_at_cloud"),
    )
    for name, key in measures:
        s = c[key]
        rows.append(f"| {name} | {s['n']} | {s['p50']:.2f} | {s['p99']:.2f} | {s['max']:.2f} |")
    return rows
