"""Checks and a restart rig shared by the test_flow_* modules (real ledger, either backend)."""

from __future__ import annotations

import json
from typing import Any

from support.invariants import check_invariants
from support.rig import Bank, restart

from kiosk.domain.status import LockerStatus
from kiosk.ledger.db import Ledger

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
    and every queued event body as docs/contracts/mqtt.md promises."""
    check_invariants(ledger.conn)
    assert ledger.audit.verify().ok
    rows = [
        (a, s, json.loads(d))
        for a, s, d in ledger.conn.execute("SELECT action, subject, detail FROM audit")
    ]
    for parcel in ledger.parcels.select():
        mine = {a for a, s, d in rows if parcel.parcel_id in (s, d.get("parcel_id"))}
        assert mine & STATUS_ACTIONS[parcel.status.value], (parcel, sorted(mine))
    for locker in ledger.parcels.lockers():
        if locker.status is not LockerStatus.AVAILABLE:
            assert any(s == locker.label for _, s, _ in rows), locker
    for event in ledger.outbox.pending(limit=100_000):
        if event.type.startswith("parcel."):
            assert event.body.get("parcel_id") and event.body.get("locker"), event
        if event.type.startswith(("door.", "locker.")):
            assert event.body.get("label"), event


def actions(ledger: Ledger) -> list[str]:
    return [r[0] for r in ledger.conn.execute("SELECT action FROM audit ORDER BY id")]


def bodies(ledger: Ledger, type_: str) -> list[dict[str, Any]]:
    return [e.body for e in ledger.outbox.pending(limit=100_000) if e.type == type_]


class Restarts:
    """Stop a bank as a crash would (door ops as they are) and start a new one on its file.

    The new bank runs on the same backend and the same physical doors (support.rig.restart).
    """

    def __init__(self) -> None:
        self.rigs: list[Bank] = []

    async def reopen(self, old: Bank) -> Bank:
        rig = await restart(old)
        self.rigs.append(rig)
        return rig

    async def close(self) -> None:
        for rig in self.rigs:
            await rig.stop()
