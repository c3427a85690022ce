"""Transitions more than one flow makes: written once, always inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from kiosk.clock import to_text
from kiosk.domain.status import PARCEL_INSIDE, LockerStatus, ParcelStatus, check_parcel_move
from kiosk.ledger.records import DoorOp, LockerRow, ParcelRow
from kiosk.service.context import ServiceContext


def mark_delivered(
    ctx: ServiceContext,
    parcel: ParcelRow,
    locker: LockerRow,
    now: datetime,
    actor: str,
    needs_check: bool = False,
) -> None:
    """The parcel is (or, after a crash, may be) in `locker`: DELIVERED, locker OCCUPIED.

    With `needs_check` both are flagged for a technician, and the delivery code
    stays until the technician says the parcel is really there.
    """
    ledger = ctx.ledger
    check_parcel_move(parcel.status, ParcelStatus.DELIVERED)
    expires = now + ctx.pickup_window
    flags = {"needs_check": True, "check_reason": "delivery"} if needs_check else {}
    ledger.parcels.update(
        parcel,
        now,
        status=ParcelStatus.DELIVERED,
        locker=locker.label,
        delivered_at=now,
        expires_at=expires,
        **flags,
    )
    changes: dict[str, object] = {"parcel_id": parcel.parcel_id, "reserved_until": None}
    if locker.status is LockerStatus.RESERVED:
        changes["status"] = LockerStatus.OCCUPIED  # an out-of-service locker stays so
    if needs_check:
        changes["needs_check"] = True
    ledger.parcels.update_locker(locker, now, **changes)
    if not needs_check:
        ledger.codes.drop(parcel.parcel_id, "delivery")
    body: dict[str, object] = {
        "parcel_id": parcel.parcel_id,
        "locker": locker.label,
        "size": parcel.size.value,
        "expires_at": to_text(expires),
        "needs_check": needs_check,
    }
    ledger.outbox.add(now, "parcel.delivered", body)
    ledger.audit.record(
        now,
        actor,
        "parcel.delivered",
        parcel.parcel_id,
        locker=locker.label,
        needs_check=needs_check,
    )


def settle_in_doubt(ctx: ServiceContext, op: DoorOp, now: datetime, door: str) -> None:
    """Settle a door operation nobody saw finish (a crash, an unreadable door). In doubt,
    the parcel is inside.

    A delivery whose door may have opened becomes DELIVERED with needs_check;
    a pickup or collection keeps its parcel inside, flagged. The locker is
    flagged too and is not handed out until a technician records what is
    inside. `door` (open | shut | unknown) is what its sensor read, for the audit.
    """
    ledger = ctx.ledger
    locker = ledger.parcels.locker(op.label)
    parcel = ledger.parcels.find(op.parcel_id) if op.parcel_id else None
    if op.kind == "delivery" and parcel and parcel.status is ParcelStatus.EXPECTED:
        mark_delivered(ctx, parcel, locker, now, "kiosk", needs_check=True)
    elif parcel is not None and parcel.status in PARCEL_INSIDE:
        ledger.parcels.update(parcel, now, needs_check=True, check_reason=op.kind)
        ledger.parcels.update_locker(locker, now, needs_check=True)
    elif locker.status is LockerStatus.RESERVED:
        ledger.parcels.update_locker(locker, now, needs_check=True)
    ledger.doors.update(op, now, state="RECOVERED")
    ledger.audit.record(
        now,
        "kiosk",
        "door_op.recovered",
        op.label,
        op=op.id,
        kind=op.kind,
        was=op.state,
        parcel_id=op.parcel_id,
        door=door,
    )
