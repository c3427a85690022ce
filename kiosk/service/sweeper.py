"""Time-driven rules: expiry (the locker stays OCCUPIED), expiring-soon, reminders, stale holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.clock import to_text
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk.ledger.records import ParcelRow
from kiosk.service.context import ServiceContext


@dataclass(frozen=True)
class SweepReport:
    expired: int = 0
    expiring: int = 0
    reminders: int = 0
    holds_released: int = 0


class Sweeper:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """One pass over every rule; each parcel's change commits with its event and audit row.

        Reminder counts are derived from elapsed time, so a clock that jumps a
        week forward sends one reminder, not seven.
        """
        ctx, ledger = self.ctx, self.ctx.ledger
        now = now or ctx.clock.now()
        busy = {op.parcel_id for op in ledger.doors.unfinished()}
        counts = {"parcel.expired": 0, "parcel.expiring": 0, "parcel.reminder": 0}
        for parcel in ledger.parcels.select(statuses=[ParcelStatus.DELIVERED.value]):
            if parcel.parcel_id in busy or parcel.expires_at is None:
                continue  # a door is open for it right now: let that finish first
            due = self._due(parcel, now)
            if due is None:
                continue  # nothing to say: no transaction at all
            event, changes, extra = due
            with ledger.tx():
                parcel = ledger.parcels.update(parcel, now, **changes)
                body = {"parcel_id": parcel.parcel_id, "locker": parcel.locker, **extra}
                ledger.outbox.add(now, event, body)
                ledger.audit.record(now, "kiosk", event, parcel.parcel_id, **extra)
            counts[event] += 1
        expired, expiring, reminders = counts.values()
        return SweepReport(expired, expiring, reminders, self._release_stale_holds(now))

    def _due(
        self, parcel: ParcelRow, now: datetime
    ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """The one event this parcel is due now, with its changes and body fields, if any."""
        ctx = self.ctx
        assert parcel.expires_at is not None
        if now >= parcel.expires_at:
            return "parcel.expired", {"status": ParcelStatus.EXPIRED}, {}
        if not parcel.expiring_sent and parcel.expires_at - now <= ctx.expiring_window:
            return (
                "parcel.expiring",
                {"expiring_sent": True},
                {"expires_at": to_text(parcel.expires_at)},
            )
        if parcel.delivered_at is None or parcel.expiring_sent:
            return None
        reminder = int((now - parcel.delivered_at) / ctx.reminder_every)
        if reminder > parcel.reminders_sent:
            return "parcel.reminder", {"reminders_sent": reminder}, {"reminder": reminder}
        return None

    def _release_stale_holds(self, now: datetime) -> int:
        """A RESERVED locker past its hold with no door operation behind it goes free."""
        ledger = self.ctx.ledger
        in_flight = {op.label for op in ledger.doors.unfinished()}
        released = 0
        for locker in ledger.parcels.lockers():
            if locker.status is not LockerStatus.RESERVED or locker.label in in_flight:
                continue
            if locker.reserved_until is not None and locker.reserved_until > now:
                continue
            with ledger.tx():
                ledger.parcels.update_locker(
                    locker, now, status=LockerStatus.AVAILABLE, parcel_id=None, reserved_until=None
                )
                ledger.audit.record(now, "kiosk", "hold.expired", locker.label)
            released += 1
        return released
