"""After a door opened for a visit: reopen it once, reopen after a pickup, report a problem.

The daemon's API decides which visit may ask (its `Visits`); these use cases
decide what the bank does: a reopen is a door operation of its own kind,
`reopen` (journalled with the visit's role and why, audited as
`visit.reopen`, `door.opened` with reason `reopen` in the outbox), at most
once per visit and why, counted from the journal so a restart forgets
nothing; a report takes the locker out of service for a technician
(`locker.out_of_service`) and, for a courier whose parcel never got in,
corrects the parcel back to expected and opens another free locker for it.
"""

from __future__ import annotations

from datetime import timedelta

from kiosk.domain.errors import InvalidState
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk.service.access import AccessFlows
from kiosk.service.context import ServiceContext
from kiosk.service.maintenance import Maintenance
from kiosk.service.results import CodeResult

#: How long after a pickup's door shut the customer may open it again ("I left something").
REOPEN_AFTER_PICKUP_S = 30
WHY = ("didnt_open", "left_something")


class Aftercare:
    def __init__(self, ctx: ServiceContext, access: AccessFlows, maintenance: Maintenance) -> None:
        self.ctx, self.access, self.maintenance = ctx, access, maintenance

    async def reopen(
        self, label: str, parcel_id: str | None, role: str, why: str, actor: str
    ) -> CodeResult:
        """Open the visit's door again; "left_something" only within 30 s of a pickup."""
        if why not in WHY:
            raise InvalidState(f"why must be one of {', '.join(WHY)}.")
        if why == "left_something":
            parcel = self.ctx.ledger.parcels.get(parcel_id or "")
            since = self.ctx.clock.now() - (parcel.closed_at or self.ctx.clock.now())
            if (
                role != "customer"
                or parcel.status is not ParcelStatus.PICKED_UP
                or since > timedelta(seconds=REOPEN_AFTER_PICKUP_S)
            ):
                raise InvalidState("This door can no longer be opened again; ask for help.")
        if parcel_id and self.ctx.ledger.doors.reopens_since_visit(label, parcel_id, role, why):
            # Once per visit, as the ledger says: a restart forgets nothing.
            raise InvalidState("This door has already been opened again once; ask for help.")
        opened = await self.maintenance.open_door(
            label,
            why,
            actor=actor,
            action="visit.reopen",
            kind="reopen",
            role=role,
            parcel_id=parcel_id,
        )
        return CodeResult(role, label, parcel_id, opened.size)

    async def report(
        self, label: str, parcel_id: str | None, role: str, actor: str
    ) -> CodeResult | None:
        """Flag the locker for a technician; a courier's parcel gets another free locker."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        if ledger.doors.unfinished_for(label) is not None:
            raise InvalidState(f"Locker {label} is in use right now; close its door first.")
        why = f"reported at the keypad by the {role}: the door did not open"
        moved = None
        with ledger.tx():
            locker = ledger.parcels.locker(label)
            if role == "courier" and parcel_id and locker.parcel_id == parcel_id:
                parcel = ledger.parcels.get(parcel_id)
                if parcel.status is ParcelStatus.DELIVERED:
                    # The courier still holds it: correction back to EXPECTED, codes kept.
                    ledger.parcels.update(
                        parcel,
                        now,
                        status=ParcelStatus.EXPECTED,
                        locker=None,
                        delivered_at=None,
                        expires_at=None,
                    )
                    ledger.audit.record(now, actor, "parcel.not_delivered", parcel_id, locker=label)
                    moved = ledger.parcels.get(parcel_id)
            changes: dict[str, object] = {"status": LockerStatus.OUT_OF_SERVICE, "note": why}
            if moved is not None:
                changes.update(parcel_id=None, reserved_until=None)
            if locker.status is not LockerStatus.OUT_OF_SERVICE:
                ledger.parcels.update_locker(locker, now, **changes)
                ledger.outbox.add(now, "locker.out_of_service", {"label": label, "reason": why})
            ledger.audit.record(now, actor, "visit.report", label, parcel_id=parcel_id, reason=why)
        if moved is None:
            return None
        return await self.access.reserve_and_open(moved, moved.size.rank)
