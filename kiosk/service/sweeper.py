"""Time-driven rules: expiry (the locker stays OCCUPIED), expiring-soon, reminders, stale holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kiosk.clock import to_text
from kiosk.domain.status import LockerStatus, ParcelStatus
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
        busy = {op.parcel_id for op in ledger.unfinished_ops()}
        expired = expiring = reminders = 0
        for parcel in ledger.parcels(statuses=[ParcelStatus.DELIVERED.value]):
            if parcel.parcel_id in busy or parcel.expires_at is None:
                continue  # a door is open for it right now: let that finish first
            body = {"parcel_id": parcel.parcel_id, "locker": parcel.locker}
            with ledger.tx():
                if now >= parcel.expires_at:
                    ledger.set_parcel(parcel, now, status=ParcelStatus.EXPIRED)
                    ledger.event(now, "parcel.expired", body)
                    ledger.audit(now, "kiosk", "parcel.expired", parcel.parcel_id)
                    expired += 1
                    continue
                if not parcel.expiring_sent and parcel.expires_at - now <= ctx.expiring_window:
                    parcel = ledger.set_parcel(parcel, now, expiring_sent=True)
                    ledger.event(
                        now,
                        "parcel.expiring",
                        {**body, "expires_at": to_text(parcel.expires_at or now)},
                    )
                    ledger.audit(now, "kiosk", "parcel.expiring", parcel.parcel_id)
                    expiring += 1
                    continue
                if parcel.delivered_at is None or parcel.expiring_sent:
                    continue
                due = int((now - parcel.delivered_at) / ctx.reminder_every)
                if due > parcel.reminders_sent:
                    ledger.set_parcel(parcel, now, reminders_sent=due)
                    ledger.event(now, "parcel.reminder", {**body, "reminder": due})
                    ledger.audit(now, "kiosk", "parcel.reminder", parcel.parcel_id, n=due)
                    reminders += 1
        return SweepReport(expired, expiring, reminders, self._release_stale_holds(now))

    def _release_stale_holds(self, now: datetime) -> int:
        """A RESERVED locker past its hold with no door operation behind it goes free."""
        ledger = self.ctx.ledger
        in_flight = {op.label for op in ledger.unfinished_ops()}
        released = 0
        for locker in ledger.lockers():
            if locker.status is not LockerStatus.RESERVED or locker.label in in_flight:
                continue
            if locker.reserved_until is not None and locker.reserved_until > now:
                continue
            with ledger.tx():
                ledger.set_locker(
                    locker, now, status=LockerStatus.AVAILABLE, parcel_id=None, reserved_until=None
                )
                ledger.audit(now, "kiosk", "hold.expired", locker.label)
            released += 1
        return released
