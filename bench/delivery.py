"""Delivery and pickup throughput through the real service, GPIO bank (MockFactory) and ledger file.

Each flow is what a courier (or customer) causes at the bank: `submit_code`
(limiter commit, reservation + door-op journal commit, unlock pulse, wait for
the sensor, door-opened commit), the door shut by hand, then `poll_doors`,
whose one transaction is the close of door: locker RESERVED -> OCCUPIED,
parcel EXPECTED -> DELIVERED, delivery code dropped, door op DONE, outbox
events, audit row. Doors are moved by the product's GPIO door simulator
(`firmware_bridge.gpio_sim`, the one `kiosk demo` and the tests use), which
springs a door open on a relay pulse; the bench shuts it.

The bank is 12 lockers (a mock Pi header takes at most 14); the ledger file
holds the same year of finished parcels as the assignment bench. Parcels go
in batches of 12: 12 deliveries, then their 12 pickups, so every locker
cycles and no lock is pulsed while its previous pulse is still running.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from bench.fixture import BankState, fill_ledger
from bench.stats import MS, summarise
from firmware_bridge.gpio import GpioChannel, GpioLockBank
from firmware_bridge.gpio_sim import GpioDoorSim
from kiosk.clock import SystemClock
from kiosk.config.model import LockerConfig, PolicyConfig
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService

#: label, size: 4 S, 4 M, 4 L, and the parcel sizes of one batch in the same order.
BANK = [(f"A-{n}", "S" if n <= 4 else "M" if n <= 8 else "L") for n in range(1, 13)]
BATCH = len(BANK)
PULSE_MS = 20
#: What is timed per flow: the whole flow, submit_code until the door is seen open, poll_doors.
_TIMED = (
    "delivery_flow",
    "delivery_open",
    "delivery_close",
    "pickup_flow",
    "pickup_open",
    "pickup_close",
)


def _bank(factory: MockFactory) -> tuple[GpioLockBank, dict[str, tuple[int, int]]]:
    pins = {label: (2 + i, 14 + i) for i, (label, _) in enumerate(BANK)}
    channels = [GpioChannel(i, *pins[label]) for i, (label, _) in enumerate(BANK)]
    gpio = GpioLockBank(
        "gpio", channels, pulse_ms=PULSE_MS, max_pulse_ms=500, debounce_ms=0, pin_factory=factory
    )
    return gpio, pins


class _Rig:
    def __init__(
        self, service: LockerService, doors: GpioDoorSim, factory: MockFactory, ledger: Ledger
    ) -> None:
        self.service = service
        self.doors = doors
        self.factory = factory
        self.ledger = ledger
        self.relay_waits = 0
        self.flow_end: dict[str, float] = {}  # label -> time.monotonic() its last flow ended

    async def relays_idle(self, labels: Iterable[str]) -> None:
        """Untimed: wait until these locks' last pulses are over and the simulator has seen so.

        A pulse that is still running is not restarted (GpioLockBank), and the
        simulator, ticking every 2 ms, would miss an off-then-on between two of
        its ticks; either would cost a 5 s door-open timeout that no real courier
        causes. So a lock is pulsed again only PULSE_MS + 8 ms after its last flow.
        """
        settle = PULSE_MS / 1000 + 0.008
        for label in labels:
            relay = self.factory.pin(self.doors.pins[label][0])
            ready_at = self.flow_end.get(label, 0.0) + settle
            while relay.state or time.monotonic() < ready_at:
                self.relay_waits += 1
                await asyncio.sleep(0.001)

    async def flow(self, code: str, expect: str) -> tuple[str, int, int, int]:
        """One code -> door open -> door shut -> poll. Returns label and ns of open/close/total."""
        clock = time.perf_counter_ns
        start = clock()
        result = await self.service.submit_code(code)
        opened = clock()
        self.doors.close(result.locker)
        before_poll = clock()
        outcomes = await self.service.poll_doors()
        end = clock()
        self.flow_end[result.locker] = time.monotonic()
        if [o.result for o in outcomes] != [expect]:
            raise RuntimeError(f"expected one {expect!r} at {result.locker}, got {outcomes}")
        return result.locker, opened - start, end - before_poll, end - start

    def free_labels(self) -> list[str]:
        return [lk.label for lk in self.service.lockers() if lk.status.value == "AVAILABLE"]


def _count_commits(ledger: Ledger) -> list[str]:
    seen: list[str] = []
    ledger.conn.set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper().startswith("COMMIT") else None
    )
    return seen


async def _calibrate(rig: _Rig) -> dict[str, int]:
    """Commits per delivery flow and per pickup flow, counted on one untimed parcel."""
    ann = rig.service.announce(Size.S)
    seen = _count_commits(rig.ledger)
    try:
        label, *_ = await rig.flow(ann.delivery_code, "delivered")
        delivery = len(seen)
        await rig.relays_idle([label])
        seen.clear()
        await rig.flow(ann.pickup_code, "picked_up")
        pickup = len(seen)
    finally:
        rig.ledger.conn.set_trace_callback(None)
    return {"delivery": delivery, "pickup": pickup}


def _empty_commits(ledger: Ledger, count: int) -> list[int]:
    """The floor under every flow: one BEGIN IMMEDIATE / one-row write / COMMIT, fsync included."""
    samples = []
    for i in range(count):
        start = time.perf_counter_ns()
        with ledger.tx():
            ledger.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('bench', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(i),),
            )
        samples.append(time.perf_counter_ns() - start)
    ledger.conn.execute("DELETE FROM meta WHERE key = 'bench'")
    return samples


async def _measure(rig: _Rig, deliveries: int, empty_commits: int) -> dict[str, Any]:
    service = rig.service
    sizes = [Size(size) for _, size in BANK]
    announce_ns, announced = [], []
    for i in range(deliveries):
        start = time.perf_counter_ns()
        announced.append(service.announce(sizes[i % BATCH]))
        announce_ns.append(time.perf_counter_ns() - start)
    commits = await _calibrate(rig)
    timings: dict[str, list[int]] = {name: [] for name in _TIMED}
    wall = time.perf_counter_ns()
    for first in range(0, deliveries, BATCH):
        batch = announced[first : first + BATCH]
        placed = []
        for ann in batch:
            await rig.relays_idle(rig.free_labels())
            label, opened, closed, total = await rig.flow(ann.delivery_code, "delivered")
            placed.append((ann, label))
            timings["delivery_open"].append(opened)
            timings["delivery_close"].append(closed)
            timings["delivery_flow"].append(total)
        for ann, label in placed:
            await rig.relays_idle([label])
            _, opened, closed, total = await rig.flow(ann.pickup_code, "picked_up")
            timings["pickup_open"].append(opened)
            timings["pickup_close"].append(closed)
            timings["pickup_flow"].append(total)
    wall_s = (time.perf_counter_ns() - wall) / 1e9
    summary = {name: summarise(ns, MS) for name, ns in timings.items()}
    for name in ("delivery_flow", "pickup_flow", "delivery_close", "pickup_close"):
        summary[name]["per_s"] = round(len(timings[name]) / (sum(timings[name]) / 1e9), 1)
    summary["announce"] = summarise(announce_ns, MS)
    summary["empty_commit"] = summarise(_empty_commits(rig.ledger, empty_commits), MS)
    summary["empty_commit"]["per_s"] = round(1000 / summary["empty_commit"]["mean"], 1)
    return {
        "latency_ms": summary,
        "commits_per_flow": commits,
        "wall_seconds_flows": round(wall_s, 2),
        "flows_per_s_wall": round(2 * deliveries / wall_s, 1),
        "relay_waits": rig.relay_waits,
    }


async def _run(
    path: Path, deliveries: int, past_parcels: int, empty_commits: int, poll_s: float
) -> dict[str, Any]:
    configs = tuple(
        LockerConfig(label, Size(size), "gpio", 1, i) for i, (label, size) in enumerate(BANK)
    )
    ledger = Ledger.open(path)
    factory = MockFactory()
    gpio, pins = _bank(factory)
    doors = GpioDoorSim(factory, pins, tick_s=0.002)  # the figures of docs/benchmarks.md
    try:
        contents = fill_ledger(
            ledger,
            configs,
            past_parcels,
            BankState(occupied=0, reserved=0, out_of_service=0, expected=0),
            datetime.now(UTC),
            seed=12,
        )
        service = LockerService.build(
            ledger,
            gpio,
            SystemClock(),
            os.urandom(32),
            configs,
            PolicyConfig(),
            "bench-site",
            poll_s,
        )
        await service.start()  # claims the pins: the pull-ups read as open doors ...
        doors.start()  # ... until the simulator shuts every door
        rig = _Rig(service, doors, factory, ledger)
        measured = await _measure(rig, deliveries, empty_commits)
        audit = ledger.audit.verify()
        return {
            "lockers": len(BANK),
            "deliveries": deliveries,
            "pickups": deliveries,
            "past_parcels": contents["parcels"],
            "poll_s": poll_s,
            "pulse_ms": PULSE_MS,
            "audit_ok": audit.ok,
            "audit_rows": audit.rows,
            "outbox_depth": ledger.outbox.depth(),
            **measured,
        }
    finally:
        await doors.stop()
        await gpio.close()
        ledger.close()
        factory.reset()


def run(
    workdir: Path,
    deliveries: int = 240,
    past_parcels: int = 100_000,
    empty_commits: int = 200,
    poll_s: float = 0.002,
) -> dict[str, Any]:
    """`deliveries` is rounded up to whole batches of 12; each is followed by its pickup."""
    deliveries = -(-deliveries // BATCH) * BATCH
    return asyncio.run(
        _run(workdir / "delivery.db", deliveries, past_parcels, empty_commits, poll_s)
    )
