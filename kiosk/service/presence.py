"""Parcel-presence sensors in the flows: a closing is checked against what the compartment holds.

Where a locker has a presence sensor (register map v2, gpio `presence_pins`):

* a delivery whose door closes on an empty compartment is no delivery: the
  door is reopened once (result `empty`, the screen asks the courier to put
  the parcel in); still empty at the second close, the locker goes free and
  the parcel back to EXPECTED, its delivery code still valid until its
  deliver-by (result `not_delivered`, event `parcel.not_delivered`);
* a pickup whose door closes with something still inside is no pickup: the
  door is reopened once (result `still_inside`); still occupied at the second
  close, the parcel stays DELIVERED with its pickup code, and the locker is
  flagged for a check (result `not_picked_up`, events `parcel.not_picked_up`
  and `locker.needs_check`);
* an idle locker is watched (`IdleWatch`): AVAILABLE but reading occupied ->
  flagged (`locker.needs_check`) and not assigned until a technician records
  the check; holding a parcel but reading empty -> alarm `parcel.missing`.

A locker with no sensor (presence None) keeps the v1 rules: the door cycle
is trusted. The reading used is the one taken with the door reading that saw
the door shut (`PresenceBank.presence`), so no second poll is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmware_bridge.bank import ChannelRef, DoorState, last_presence
from kiosk.domain.errors import DoorJammed, KioskError
from kiosk.domain.status import PARCEL_INSIDE, LockerStatus
from kiosk.ledger.records import DoorOp
from kiosk.service.context import ServiceContext
from kiosk.service.doors import DoorDriver, door_body
from kiosk.service.results import DoorOutcome

log = logging.getLogger(__name__)

#: A closing that presence refuses: the finding, and the result once the door was reopened.
EMPTY, STILL_INSIDE = "empty", "still_inside"
REFUSED = {EMPTY: "not_delivered", STILL_INSIDE: "not_picked_up"}


@dataclass(frozen=True)
class PresenceCheck:
    """One locker's presence sensor over a sweep of readings, as selftest and doctor show it.

    `readings`: what it said, sorted: `occupied`, `empty`, or `none` (no sensor
    fitted, or its board did not answer). `problem` is "" when nothing is wrong.
    """

    label: str
    status: str
    readings: tuple[str, ...]
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "status": self.status,
            "readings": list(self.readings),
            "ok": self.ok,
            "problem": self.problem,
        }


def judge_presence(
    label: str, status: LockerStatus, holds_parcel: bool, seen: Collection[bool | None]
) -> PresenceCheck:
    """What a sweep of one sensor's readings says of it, given what the ledger says is inside.

    * occupied on every reading of an AVAILABLE locker: something left inside,
      or a sensor stuck at occupied (a technician looks: `kiosk check`);
    * empty on every reading of a locker holding a parcel: the parcel is gone,
      or the sensor is blind;
    * occupied and empty within one sweep with the door shut: a flickering sensor.
    A locker with no sensor is never a fault here.
    """
    words = tuple(sorted({"none" if v is None else "occupied" if v else "empty" for v in seen}))
    problem = ""
    if words == ("occupied",) and status is LockerStatus.AVAILABLE:
        problem = "reads occupied in a free locker: something left inside, or the sensor is stuck"
    elif words == ("empty",) and holds_parcel:
        problem = "reads empty but the locker holds a parcel: parcel gone, or the sensor is blind"
    elif "occupied" in words and "empty" in words:
        problem = "flickers between occupied and empty: check the sensor and its wiring"
    return PresenceCheck(label, status.value, words, problem)


def presence_by_label(ctx: ServiceContext) -> dict[str, bool | None]:
    """Each locker's presence at its board's last reading (None: no sensor, or unread)."""
    found = last_presence(ctx.bank)
    return {label: found.get(ref) for label, ref in ctx.channels.items()}


class ClosingCheck:
    """Decides whether a closing stands, and reopens a door once when it does not."""

    def __init__(self, ctx: ServiceContext, doors: DoorDriver) -> None:
        self.ctx = ctx
        self.doors = doors

    def finding(self, op: DoorOp) -> str | None:
        """EMPTY (a delivery closed on nothing), STILL_INSIDE (a pickup closed on its parcel),
        or None: the closing stands (no sensor, or the sensor agrees)."""
        seen = last_presence(self.ctx.bank).get(self.ctx.channel(op.label))
        if seen is None:
            return None
        if op.kind == "delivery" and not op.intent and seen is False:
            return EMPTY
        if op.kind == "pickup" and seen is True:
            return STILL_INSIDE
        return None

    async def reopen_once(self, op: DoorOp, finding: str) -> DoorOutcome | None:
        """The first refused closing of `op`: pulse its lock again and say why; None at the
        second (the caller then records the refused closing).

        A door that does not open again is recorded as a jam (the courier's
        parcel stays EXPECTED, the customer's stays inside).

        "Once" is the operation's `reopened` count in the journal, written with
        the closing's event: a restart between the two closings forgets nothing.
        The door opened again is a reopen: its `door.opened` says `reopen` and
        the role it was reopened for.
        """
        if op.reopened:
            return None
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():  # the door did close: said so, though the operation goes on
            ledger.outbox.add(now, "door.closed", door_body(op))
            op = ledger.doors.update(op, now, reopened=op.reopened + 1)
            ledger.audit.record(now, "kiosk", f"{op.kind}.{finding}", op.label, op=op.id)
        log.info("locker %s closed %s: reopening it once", op.label, finding.replace("_", " "))
        try:
            opened = await self.doors.open(op)
        except KioskError as exc:
            return DoorOutcome(op.label, op.kind, REFUSED[finding], op.parcel_id, error=exc)
        if opened:
            return DoorOutcome(op.label, op.kind, finding, op.parcel_id)
        self.doors.record_jam(op)
        err = DoorJammed(f"The door of locker {op.label} did not open again.", locker=op.label)
        return DoorOutcome(op.label, op.kind, REFUSED[finding], op.parcel_id, error=err)

    def refuse(self, op: DoorOp, finding: str, now: datetime) -> str:
        """The second refused closing, inside the caller's transaction; returns the result."""
        ledger = self.ctx.ledger
        locker = ledger.parcels.locker(op.label)
        parcel_id = op.parcel_id or ""
        if finding == EMPTY:
            changes: dict[str, object] = {"reserved_until": None}
            if locker.parcel_id == parcel_id:
                changes["parcel_id"] = None
            if locker.status is LockerStatus.RESERVED:
                changes["status"] = LockerStatus.AVAILABLE
            ledger.parcels.update_locker(locker, now, **changes)
            body = {"parcel_id": parcel_id, "locker": op.label, "reason": "compartment_empty"}
            ledger.outbox.add(now, "parcel.not_delivered", body)
            ledger.audit.record(now, "kiosk", "parcel.not_delivered", parcel_id, locker=op.label)
            return REFUSED[EMPTY]
        ledger.parcels.update_locker(locker, now, needs_check=True)
        body = {"parcel_id": parcel_id, "locker": op.label, "reason": "parcel_still_inside"}
        ledger.outbox.add(now, "parcel.not_picked_up", body)
        ledger.outbox.add(
            now, "locker.needs_check", {"label": op.label, "reason": "parcel_left_inside"}
        )
        ledger.audit.record(now, "kiosk", "parcel.not_picked_up", parcel_id, locker=op.label)
        return REFUSED[STILL_INSIDE]


class IdleWatch:
    """Lockers no flow is using, checked against their presence sensors on every poll.

    A finding counts once `confirm_reads` polls in a row agree with the door
    read shut (a hand in an open door, a flicker of the beam, is nothing).
    Each finding is raised once: it flags the locker, and a flagged locker is
    not looked at again until a technician records the check.
    """

    def __init__(self, ctx: ServiceContext, confirm_reads: int = 2) -> None:
        self.ctx = ctx
        self.confirm_reads = max(1, confirm_reads)
        self._agreeing: dict[str, tuple[str, int]] = {}  # label -> (finding, polls in a row)

    def poll(self, states: dict[ChannelRef, DoorState]) -> list[tuple[str, str]]:
        """One poll; returns the (label, finding) raised now: `occupied` or `missing`."""
        ledger = self.ctx.ledger
        seen = last_presence(self.ctx.bank)
        if all(value is None for value in seen.values()):
            return []  # no sensor fitted (or none read): nothing to watch, no ledger query
        busy = {op.label for op in ledger.doors.unfinished()}
        raised: list[tuple[str, str]] = []
        lockers = {row.label: row for row in ledger.parcels.lockers()}
        for label, ref in self.ctx.channels.items():
            row = lockers.get(label)
            finding = None
            if (
                row is not None
                and seen.get(ref) is not None
                and states.get(ref) is DoorState.SHUT
                and label not in busy
                and not row.needs_check
            ):
                if row.status is LockerStatus.AVAILABLE and seen[ref]:
                    finding = "occupied"
                elif row.status is LockerStatus.OCCUPIED and not seen[ref] and row.parcel_id:
                    finding = "missing"
            if finding is None:
                self._agreeing.pop(label, None)
                continue
            was, count = self._agreeing.get(label, (finding, 0))
            count = count + 1 if was == finding else 1
            self._agreeing[label] = (finding, count)
            if count >= self.confirm_reads and self._raise(label, finding):
                self._agreeing.pop(label, None)
                raised.append((label, finding))
        return raised

    def _raise(self, label: str, finding: str) -> bool:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            locker = ledger.parcels.locker(label)
            if locker.needs_check or ledger.doors.unfinished_for(label) is not None:
                return False
            if finding == "occupied":
                if locker.status is not LockerStatus.AVAILABLE:
                    return False
                ledger.parcels.update_locker(locker, now, needs_check=True)
                body = {"label": label, "reason": "occupied_while_available"}
                ledger.outbox.add(now, "locker.needs_check", body)
                ledger.audit.record(
                    now, "kiosk", "locker.needs_check", label, reason=body["reason"]
                )
                log.warning("locker %s is free but its presence sensor sees something", label)
                return True
            parcel = ledger.parcels.find(locker.parcel_id or "")
            if parcel is None or parcel.status not in PARCEL_INSIDE:
                return False
            ledger.parcels.update_locker(locker, now, needs_check=True)
            ledger.parcels.update(parcel, now, needs_check=True, check_reason="missing")
            body = {"parcel_id": parcel.parcel_id, "locker": label, "status": parcel.status.value}
            ledger.outbox.add(now, "parcel.missing", body)
            ledger.audit.record(now, "kiosk", "parcel.missing", parcel.parcel_id, locker=label)
            log.warning("locker %s holds parcel %s but reads empty", label, parcel.parcel_id)
            return True
