"""Checks and a restart rig shared by the test_flow_* modules (real ledger, real GPIO bank)."""

from __future__ import annotations

import json
from typing import Any

from gpiozero.pins.mock import MockFactory
from support.invariants import check_invariants
from support.physics import GpioDoorPhysics

from firmware_bridge.gpio import GpioChannel, GpioLockBank
from kiosk.config.model import LockerConfig
from kiosk.domain.status import LockerStatus
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService

#: The audit action that must exist for a parcel in each status (it explains how it got there).
STATUS_ACTIONS = {
    "EXPECTED": {"reservation.create"},
    "DELIVERED": {"parcel.delivered", "door_op.recovered"},
    "PICKED_UP": {"parcel.picked_up"},
    "EXPIRED": {"parcel.expired"},
    "RETURNED": {"parcel.returned"},
    "CANCELLED": {"reservation.cancel"},
}


def assert_sound(ledger: Ledger) -> None:
    """Ledger invariants, an intact audit chain that explains every parcel and busy locker,
    and every queued event body as DESIGN.md's contract details promise."""
    check_invariants(ledger.conn)
    assert ledger.verify_audit().ok
    rows = [(a, s, json.loads(d)) for a, s, d in ledger.conn.execute(
        "SELECT action, subject, detail FROM audit")]  # fmt: skip
    for parcel in ledger.parcels():
        mine = {a for a, s, d in rows if parcel.parcel_id in (s, d.get("parcel_id"))}
        assert mine & STATUS_ACTIONS[parcel.status.value], (parcel, sorted(mine))
    for locker in ledger.lockers():
        if locker.status is not LockerStatus.AVAILABLE:
            assert any(s == locker.label for _, s, _ in rows), locker
    for event in ledger.outbox(limit=100_000):
        if event.type.startswith("parcel."):
            assert event.body.get("parcel_id") and event.body.get("locker"), event
        if event.type.startswith(("door.", "locker.")):
            assert event.body.get("label"), event


def actions(ledger: Ledger) -> list[str]:
    return [r[0] for r in ledger.conn.execute("SELECT action FROM audit ORDER BY id")]


def bodies(ledger: Ledger, type_: str) -> list[dict[str, Any]]:
    return [e.body for e in ledger.outbox(limit=100_000) if e.type == type_]


class Restarts:
    """Stop a bank as a crash would (door ops as they are) and start a new one on its file."""

    def __init__(self, factory: MockFactory) -> None:
        self.factory = factory
        self.rigs: list[Any] = []

    async def reopen(self, old: Any) -> Any:
        configs = tuple(
            LockerConfig(r.label, r.size, r.bus, r.unit, r.channel)
            for r in sorted(old.ledger.lockers(), key=lambda r: r.channel)
        )
        await old.doors.stop()
        await old.gpio.close()
        old.ledger.close()
        pins = old.doors.pins
        gpio = GpioLockBank(
            "gpio", [GpioChannel(c.channel, *pins[c.label]) for c in configs],
            pulse_ms=60, max_pulse_ms=500, debounce_ms=0, pin_factory=self.factory,
        )  # fmt: skip
        ledger = Ledger.open(old.path)
        ctx = old.service.ctx
        service = LockerService.build(
            ledger, gpio, old.clock, old.key, configs, ctx.policy, ctx.site_id, ctx.poll_s
        )
        physics = GpioDoorPhysics(self.factory, pins)
        rig = type(old)(service, ledger, old.clock, physics, gpio, old.key, old.path)
        physics.start()
        self.rigs.append(rig)
        rig.recovered = await service.start()
        return rig

    async def close(self) -> None:
        for rig in self.rigs:
            await rig.doors.stop()
            await rig.gpio.close()
            rig.ledger.close()
