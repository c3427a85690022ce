"""Parcels announced to the bank: by the cloud (digests only) or locally (codes drawn here)."""

from __future__ import annotations

import secrets
from datetime import datetime

from kiosk.domain.codes import code_digest, draw_code, is_digest
from kiosk.domain.errors import BadRequest, Conflict, InvalidState
from kiosk.domain.sizes import Size
from kiosk.domain.status import PARCEL_FINAL, ParcelStatus, check_parcel_move
from kiosk.ledger.records import ParcelRow
from kiosk.service.context import ServiceContext
from kiosk.service.results import AnnouncedParcel

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")


def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not set(value) <= _ID_CHARS:
        raise BadRequest(f"{name} must be 1 to 64 letters, digits or -_.:", field=name)
    return value


class Reservations:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def create(
        self,
        parcel_id: str,
        size: Size,
        delivery_digest: str,
        pickup_digest: str,
        order_id: str = "",
        deliver_by: datetime | None = None,
        source: str = "cloud",
        actor: str = "cloud",
    ) -> ParcelRow:
        """Register an expected parcel. Idempotent by id: the same request again changes nothing."""
        _check_id(parcel_id, "parcel_id")
        if order_id:
            _check_id(order_id, "order_id")
        for name, digest in (
            ("delivery_digest", delivery_digest),
            ("pickup_digest", pickup_digest),
        ):
            if not is_digest(digest):
                raise BadRequest(f"{name} is not a code digest (43 base64url characters).")
        if delivery_digest == pickup_digest:
            raise BadRequest("The delivery and pickup codes must differ.")
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        existing = ledger.parcels.find(parcel_id)
        if existing is not None and existing.status in PARCEL_FINAL:
            # Its codes are gone, so new digests could not be told from the old ones:
            # answering ok would leave the cloud sending codes that open nothing.
            raise Conflict(
                f"Parcel {parcel_id} is {existing.status.value} at this bank; a parcel id "
                "is used once. Send the parcel under a new id."
            )
        if existing is not None:
            codes = {c.role: c.digest for c in ledger.codes.of_parcel(parcel_id)}
            same = (
                existing.size is size
                and existing.order_id == order_id
                and existing.deliver_by == deliver_by
                and codes.get("delivery", delivery_digest) == delivery_digest
                and codes.get("pickup", pickup_digest) == pickup_digest
            )
            if same:
                return existing
            raise Conflict(f"Parcel {parcel_id} already exists with other details.")
        with ledger.tx():
            parcel = ledger.parcels.insert(parcel_id, order_id, size, source, deliver_by, now)
            ledger.codes.add(delivery_digest, parcel_id, "delivery")
            ledger.codes.add(pickup_digest, parcel_id, "pickup")
            ledger.audit.record(
                now, actor, "reservation.create", parcel_id, size=size.value, source=source
            )
        return parcel

    def announce(self, size: Size, parcel_id: str | None = None) -> AnnouncedParcel:
        """A bank with no cloud: draw both codes (CSPRNG, unique among active); keep digests."""
        ctx = self.ctx
        pid = parcel_id or f"L-{secrets.token_hex(4).upper()}"
        length = ctx.policy.code_length

        def taken(code: str) -> bool:
            return ctx.ledger.codes.find(code_digest(ctx.code_key, code)) is not None

        delivery = draw_code(length, taken)
        pickup = draw_code(length, lambda c: c == delivery or taken(c))
        self.create(
            pid,
            size,
            code_digest(ctx.code_key, delivery),
            code_digest(ctx.code_key, pickup),
            source="local",
            actor="technician",
        )
        return AnnouncedParcel(pid, delivery, pickup, size.value)

    def cancel(self, parcel_id: str, actor: str = "cloud") -> ParcelRow:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        parcel = ledger.parcels.get(parcel_id)
        if parcel.status is ParcelStatus.CANCELLED:
            return parcel
        check_parcel_move(parcel.status, ParcelStatus.CANCELLED)
        if any(op.parcel_id == parcel_id for op in ledger.doors.unfinished()):
            raise InvalidState("A courier is delivering this parcel right now.")
        with ledger.tx():
            parcel = ledger.parcels.update(
                parcel, now, status=ParcelStatus.CANCELLED, closed_at=now
            )
            ledger.codes.drop(parcel_id)
            ledger.audit.record(now, actor, "reservation.cancel", parcel_id)
        return parcel

    def extend(self, parcel_id: str, expires_at: datetime, actor: str = "cloud") -> ParcelRow:
        """Give the customer longer: a later expires_at for a DELIVERED parcel."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        parcel = ledger.parcels.get(parcel_id)
        if parcel.status is not ParcelStatus.DELIVERED or parcel.expires_at is None:
            raise InvalidState("Only a delivered parcel's pickup time can be extended.")
        if expires_at <= parcel.expires_at:
            raise BadRequest("The new pickup deadline must be later than the current one.")
        soon = expires_at - now <= self.ctx.expiring_window
        with ledger.tx():
            parcel = ledger.parcels.update(
                parcel, now, expires_at=expires_at, expiring_sent=parcel.expiring_sent and soon
            )
            ledger.audit.record(now, actor, "parcel.extend", parcel_id, expires_at=str(expires_at))
        return parcel

    def schedule_return(
        self, parcel_id: str, return_digest: str, actor: str = "cloud"
    ) -> ParcelRow:
        """Issue a return code so a courier can collect an expired parcel."""
        if not is_digest(return_digest):
            raise BadRequest("return_digest is not a code digest (43 base64url characters).")
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        parcel = ledger.parcels.get(parcel_id)
        if parcel.status is not ParcelStatus.EXPIRED:
            raise InvalidState("Only an expired parcel can be collected for return.")
        current = {c.role: c.digest for c in ledger.codes.of_parcel(parcel_id)}
        if current.get("return") == return_digest:
            return parcel
        with ledger.tx():
            ledger.codes.drop(parcel_id, "return")
            ledger.codes.add(return_digest, parcel_id, "return")
            ledger.audit.record(now, actor, "parcel.schedule_return", parcel_id)
        return parcel
