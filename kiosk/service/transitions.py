"""Transitions more than one flow makes: written once, always inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from kiosk.clock import to_text
from kiosk.domain.status import LockerStatus, ParcelStatus, check_parcel_move
from kiosk.ledger.records import LockerRow, ParcelRow
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
    ledger.set_parcel(
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
    ledger.set_locker(locker, now, **changes)
    if not needs_check:
        ledger.drop_codes(parcel.parcel_id, "delivery")
    body: dict[str, object] = {
        "parcel_id": parcel.parcel_id,
        "locker": locker.label,
        "size": parcel.size.value,
        "expires_at": to_text(expires),
        "needs_check": needs_check,
    }
    ledger.event(now, "parcel.delivered", body)
    ledger.audit(
        now,
        actor,
        "parcel.delivered",
        parcel.parcel_id,
        locker=locker.label,
        needs_check=needs_check,
    )
