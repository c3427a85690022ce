"""Technician and start-up work: open, service in/out, checks, lockout reset, recovery."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kiosk.domain.errors import BadRequest, DoorJammed, InvalidState, LockerNotEmpty
from kiosk.domain.status import PARCEL_INSIDE, LockerStatus, ParcelStatus
from kiosk.ledger.records import LockerRow
from kiosk.service.context import ServiceContext
from kiosk.service.doors import DoorDriver
from kiosk.service.presence import presence_by_label
from kiosk.service.results import CodeResult
from kiosk.service.transitions import settle_in_doubt


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise BadRequest("Give a reason: it goes into the audit log.")
    return text[:200]


class Maintenance:
    def __init__(self, ctx: ServiceContext, doors: DoorDriver) -> None:
        self.ctx = ctx
        self.doors = doors

    async def open_door(
        self,
        label: str,
        reason: str,
        actor: str = "technician",
        journal_with: Callable[[], None] | None = None,
        action: str = "technician.open",
        kind: str = "technician",
        role: str = "",
        parcel_id: str | None = None,
    ) -> CodeResult:
        """Open any door for a technician (audited); a door that will not open -> out of service.

        `journal_with()` runs inside the transaction that journals the door
        operation: the caller's own rows that must be on disk before the pulse
        commit with it (one fsync before the pulse, not two). A visit's reopen
        is journalled as `kind` "reopen" with its `role` as the operation's actor
        and its own `parcel_id` (the locker may hold none any more).
        """
        why = _reason(reason)
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        locker = ledger.parcels.locker(label)
        if ledger.doors.unfinished_for(label) is not None:
            raise InvalidState(f"Locker {label} is in use right now; try again when it is shut.")
        with ledger.tx():
            parcel_id = parcel_id or locker.parcel_id
            op = ledger.doors.add(kind, label, parcel_id, now, actor=role or actor, reason=why)
            ledger.audit.record(now, actor, action, label, reason=why)
            if journal_with is not None:
                journal_with()
        if await self.doors.open(op):
            return CodeResult("technician", label, locker.parcel_id, locker.size.value)
        self.doors.record_jam(op)
        raise DoorJammed(
            f"The door of locker {label} did not open; it is now out of service.", locker=label
        )

    def set_service(
        self, label: str, in_service: bool, reason: str, actor: str = "technician"
    ) -> LockerRow:
        """Out of service from any state; back in as AVAILABLE (empty) or OCCUPIED (holding)."""
        why = _reason(reason)
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        locker = ledger.parcels.locker(label)
        with ledger.tx():
            if not in_service:
                if locker.status is LockerStatus.OUT_OF_SERVICE:
                    return locker
                locker = ledger.parcels.update_locker(
                    locker, now, status=LockerStatus.OUT_OF_SERVICE, note=why
                )
                ledger.outbox.add(now, "locker.out_of_service", {"label": label, "reason": why})
                ledger.audit.record(now, actor, "locker.out_of_service", label, reason=why)
                return locker
            if locker.status is not LockerStatus.OUT_OF_SERVICE:
                return locker
            if locker.needs_check:
                raise LockerNotEmpty(
                    f"Locker {label} is flagged for a check: open it, look inside, and record "
                    "what you found (kiosk check) before returning it to service.",
                    locker=label,
                )
            holding = self._parcel_inside(locker)
            if ledger.doors.unfinished_for(label) is not None:
                raise InvalidState(f"Locker {label} has a door operation in progress.")
            new = LockerStatus.OCCUPIED if holding else LockerStatus.AVAILABLE
            locker = ledger.parcels.update_locker(
                locker, now, status=new, note="", reserved_until=None, parcel_id=holding
            )
            ledger.outbox.add(now, "locker.in_service", {"label": label, "reason": why})
            ledger.audit.record(
                now, actor, "locker.in_service", label, reason=why, status=new.value
            )
            return locker

    def resolve_check(
        self, label: str, parcel_inside: bool, reason: str, actor: str = "technician"
    ) -> LockerRow:
        """Record what a technician found in a flagged locker, and clear the flag."""
        why = _reason(reason)
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        locker = ledger.parcels.locker(label)
        if not locker.needs_check:
            raise InvalidState(f"Locker {label} is not flagged for a check.")
        if ledger.doors.unfinished_for(label) is not None:
            raise InvalidState(
                f"Locker {label}'s door is in use; record the check once it is shut."
            )
        with ledger.tx():
            parcel = ledger.parcels.find(locker.parcel_id) if locker.parcel_id else None
            if parcel is not None and parcel.status in PARCEL_INSIDE:
                if parcel_inside:
                    if parcel.check_reason == "delivery":
                        ledger.codes.drop(parcel.parcel_id, "delivery")
                    ledger.parcels.update(parcel, now, needs_check=False, check_reason="")
                else:
                    self._settle_missing(parcel, now, actor)
                    parcel = None
            holding = parcel.parcel_id if parcel and parcel_inside else None
            status = locker.status
            if status is not LockerStatus.OUT_OF_SERVICE:
                status = LockerStatus.OCCUPIED if holding else LockerStatus.AVAILABLE
            locker = ledger.parcels.update_locker(
                locker,
                now,
                needs_check=False,
                parcel_id=holding,
                status=status,
                reserved_until=None,
            )
            ledger.audit.record(
                now, actor, "locker.checked", label, parcel_inside=parcel_inside, reason=why
            )
        return locker

    def _settle_missing(self, parcel, now, actor: str) -> None:  # type: ignore[no-untyped-def]
        """A flagged parcel that is not there: finish the operation that was interrupted."""
        ledger = self.ctx.ledger
        reason = parcel.check_reason
        if reason == "delivery":
            # The courier never left it: correction back to EXPECTED, codes kept.
            ledger.parcels.update(
                parcel,
                now,
                status=ParcelStatus.EXPECTED,
                locker=None,
                delivered_at=None,
                expires_at=None,
                needs_check=False,
                check_reason="",
            )
            ledger.audit.record(now, actor, "parcel.not_delivered", parcel.parcel_id)
            return
        final = ParcelStatus.RETURNED if reason == "collection" else ParcelStatus.PICKED_UP
        if parcel.status is ParcelStatus.EXPIRED and final is ParcelStatus.PICKED_UP:
            final = ParcelStatus.RETURNED
        ledger.parcels.update(parcel, now, status=final, closed_at=now, needs_check=False)
        ledger.codes.drop(parcel.parcel_id)
        event = "parcel.picked_up" if final is ParcelStatus.PICKED_UP else "parcel.returned"
        ledger.outbox.add(
            now,
            event,
            {"parcel_id": parcel.parcel_id, "locker": parcel.locker, "needs_check": True},
        )
        ledger.audit.record(now, actor, event, parcel.parcel_id, found_empty=True)

    def _parcel_inside(self, locker: LockerRow) -> str | None:
        if not locker.parcel_id:
            return None
        parcel = self.ctx.ledger.parcels.find(locker.parcel_id)
        return locker.parcel_id if parcel and parcel.status in PARCEL_INSIDE else None

    def reset_lockout(self, actor: str = "technician") -> None:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            ledger.codes.put_limiter(self.ctx.limiter.reset(ledger.codes.limiter()))
            ledger.audit.record(now, actor, "code.lockout_reset", self.ctx.site_id)

    def recover(self, doors: Mapping[str, str] | None = None) -> int:
        """Settle door operations a crash interrupted. In doubt, the parcel is inside.

        A delivery whose door may have opened becomes DELIVERED with
        needs_check; a pickup or collection keeps its parcel inside, flagged.
        The locker is flagged too and is not handed out until a technician
        records what is inside (`resolve_check`).

        One exception at start (`doors` read): an operation whose door the
        presence sensor already had opened again (`reopened`), whose door reads
        open or shut and whose sensor was read is not in doubt: it stays OPEN,
        and its closing is judged by the sensor as it would have been without
        the restart.
        """
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        settled = 0
        inside = presence_by_label(self.ctx) if doors else {}
        for op in ledger.doors.unfinished():
            seen = (doors or {}).get(op.label)
            judged = seen in ("open", "shut") and inside.get(op.label) is not None
            if op.state == "OPEN" and op.reopened and judged:
                with ledger.tx():
                    ledger.audit.record(
                        now, "kiosk", "door_op.resumed", op.label, op=op.id, door=seen
                    )
                continue
            with ledger.tx():
                settle_in_doubt(self.ctx, op, now, (doors or {}).get(op.label, "unknown"))
            settled += 1
        return settled
