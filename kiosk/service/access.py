"""Keypad flows: a typed code opens the right door; a door closing moves the ledger on."""

from __future__ import annotations

from datetime import datetime

from firmware_bridge.bank import ChannelRef, DoorState
from kiosk.domain.codes import code_digest, normalise_code
from kiosk.domain.errors import (
    BadRequest,
    CodeExpired,
    DoorJammed,
    InvalidCode,
    InvalidState,
    KioskError,
    LockedOut,
    LockerOutOfService,
    NoLockerAvailable,
    NotYetDelivered,
    SiteLocked,
)
from kiosk.domain.sizes import Size
from kiosk.domain.status import (
    PARCEL_FINAL,
    LockerStatus,
    ParcelStatus,
    check_locker_move,
    check_parcel_move,
)
from kiosk.ledger.records import CodeRow, DoorOp, ParcelRow
from kiosk.service.attempts import audit_failure
from kiosk.service.context import ServiceContext
from kiosk.service.doors import DoorDriver, door_body
from kiosk.service.presence import ClosingCheck
from kiosk.service.results import ROLE_OF_CODE, CodeResult, DoorOutcome
from kiosk.service.transitions import mark_delivered

#: Lockers one code may try before the flow stops (retry once, then the next one).
MAX_JAMS_PER_FLOW = 2

_KIND_OF_ROLE = {"delivery": "delivery", "pickup": "pickup", "return": "collection"}


class AccessFlows:
    def __init__(self, ctx: ServiceContext, doors: DoorDriver) -> None:
        self.ctx = ctx
        self.doors = doors
        self.closing = ClosingCheck(ctx, doors)

    # --- code entry ---------------------------------------------------------

    async def submit_code(self, code: str, source: str = "keypad") -> CodeResult:
        """Check a typed code under the limiter and open the door it belongs to."""
        ctx, ledger = self.ctx, self.ctx.ledger
        now = ctx.clock.now()
        state = ledger.codes.limiter()
        ctx.limiter.check(state, now)
        if not str(code).strip():
            raise BadRequest("Type your code, then press Enter.")
        found: CodeRow | None = None
        try:
            digits = normalise_code(code, ctx.policy.code_length)
        except BadRequest:
            pass  # a wrong length is a wrong code, and counts as one
        else:
            found = ledger.codes.find(code_digest(ctx.code_key, digits))
        if found is None:
            self._failure(now, source)
        assert found is not None
        parcel = ledger.parcels.get(found.parcel_id)
        if found.role == "delivery":
            return await self._delivery(parcel, now, source)
        return await self._open_inside(parcel, found.role, now, source)

    def _accept(self, now: datetime, role: str, source: str) -> None:
        """A code that opens a door ends the run of failures (inside the caller's transaction).

        Only here: a known code that cannot be used now (expired, not yet
        delivered) neither counts as a guess nor resets the back-off, so an
        old code of one's own cannot be used to buy more guesses. Written in
        the transaction that journals the door, so a code costs one fsync
        before its pulse, not two.
        """
        ctx, ledger = self.ctx, self.ctx.ledger
        ledger.codes.put_limiter(ctx.limiter.on_success(ledger.codes.limiter()))
        ledger.codes.log_attempt(now, True, role, source)

    def _failure(self, now: datetime, source: str) -> None:
        ctx, ledger = self.ctx, self.ctx.ledger
        with ledger.tx():
            before = ledger.codes.limiter()
            state, site_locked_now = ctx.limiter.on_failure(before, now)
            ledger.codes.put_limiter(state)
            ledger.codes.log_attempt(now, False, None, source)
            audit_failure(ledger, now, "code", ctx.site_id, before, state, source)
            if site_locked_now:
                body = {"day": state.day, "failures": state.day_failures}
                ledger.outbox.add(now, "code.lockout", body)
        ctx.observer.code_failure()
        if state.site_locked:
            raise SiteLocked()
        if state.locked_until is not None and state.locked_until > now:
            wait = int((state.locked_until - now).total_seconds())
            raise LockedOut(
                f"That code is not valid, and there have been too many wrong codes. "
                f"Please wait {wait} seconds and try again.",
                retry_after=wait,
            )
        left = ctx.limiter.tries_left(state)
        raise InvalidCode(
            f"That code is not valid. Check the code in your message. "
            f"{left} {'try' if left == 1 else 'tries'} left.",
            tries_left=left,
        )

    # --- delivery -----------------------------------------------------------

    async def _delivery(self, parcel: ParcelRow, now: datetime, source: str) -> CodeResult:
        if parcel.status is not ParcelStatus.EXPECTED:
            raise InvalidState(
                "This parcel has already been delivered.", parcel_id=parcel.parcel_id
            )
        if parcel.deliver_by is not None and now > parcel.deliver_by:
            raise CodeExpired(
                "This delivery code has expired. Please contact your depot.",
                parcel_id=parcel.parcel_id,
            )
        held = self._held_for(parcel.parcel_id)
        if held is not None:
            with self.ctx.ledger.tx():
                self._accept(now, "delivery", source)
            return held
        return await self.reserve_and_open(parcel, parcel.size.rank, (now, source))

    def _held_for(self, parcel_id: str) -> CodeResult | None:
        """The locker already open for this parcel (the code typed twice), if any."""
        for op in self.ctx.ledger.doors.unfinished():
            if op.parcel_id == parcel_id and op.kind == "delivery":
                if op.state == "OPEN" and not op.intent:
                    parcel = self.ctx.ledger.parcels.get(parcel_id)
                    return self._result("courier", op.label, parcel)
                raise InvalidState("This parcel is being delivered right now.")
        return None

    async def reserve_and_open(
        self, parcel: ParcelRow, min_rank: int, accepted: tuple[datetime, str] | None = None
    ) -> CodeResult:
        """Reserve the smallest fitting locker, journal, pulse; on a jam offer the next one.

        At most MAX_JAMS_PER_FLOW lockers per code: when two doors in a row do
        not report open, the fault is more likely the sensors (a cut common
        wire) than the doors, and trying on would pulse, open and take out of
        service a whole board for one courier.
        """
        ctx, ledger = self.ctx, self.ctx.ledger
        jammed: list[str] = []
        while True:
            if len(jammed) >= MAX_JAMS_PER_FLOW:
                raise DoorJammed(
                    f"Lockers {' and '.join(jammed)} did not open. A technician has been "
                    "called; please keep the parcel for now.",
                    lockers=jammed,
                )
            now = ctx.clock.now()
            with ledger.tx():
                if accepted is not None:  # the courier's code, recorded with the first locker
                    when, source = accepted
                    self._accept(when, "delivery", source)
                    accepted = None
                label = ledger.parcels.free_locker(min_rank)
                if label is None:
                    raise NoLockerAvailable(
                        "No free locker fits this parcel right now. Please keep the parcel; "
                        "the sender has been told.",
                        parcel_id=parcel.parcel_id,
                    )
                locker = ledger.parcels.locker(label)
                check_locker_move(locker.status, LockerStatus.RESERVED)
                ledger.parcels.update_locker(
                    locker,
                    now,
                    status=LockerStatus.RESERVED,
                    parcel_id=parcel.parcel_id,
                    reserved_until=now + ctx.hold,
                )
                op = ledger.doors.add("delivery", label, parcel.parcel_id, now, actor="courier")
                ledger.audit.record(
                    now, "courier", "locker.reserved", label, parcel_id=parcel.parcel_id
                )
            if await self.doors.open(op):
                return self._result("courier", label, parcel)
            self.doors.record_jam(op)
            jammed.append(label)

    # --- pickup and collection ----------------------------------------------

    async def _open_inside(
        self, parcel: ParcelRow, role: str, now: datetime, source: str
    ) -> CodeResult:
        """Open the locker that holds `parcel` for its customer (pickup) or a collector."""
        ledger = self.ctx.ledger
        if role == "pickup":
            if parcel.status is ParcelStatus.EXPECTED:
                raise NotYetDelivered(parcel_id=parcel.parcel_id)
            expired = parcel.status is ParcelStatus.EXPIRED or (
                parcel.expires_at is not None and now >= parcel.expires_at
            )
            if expired:
                raise CodeExpired(
                    "Your pickup time has ended and the parcel is going back to the sender. "
                    "Please contact customer support.",
                    parcel_id=parcel.parcel_id,
                )
            wanted = ParcelStatus.DELIVERED
        else:
            wanted = ParcelStatus.EXPIRED
        if parcel.status is not wanted or parcel.locker is None:
            raise InvalidState("This code cannot open a locker now.", parcel_id=parcel.parcel_id)
        locker = ledger.parcels.locker(parcel.locker)
        if locker.status is LockerStatus.OUT_OF_SERVICE:
            raise LockerOutOfService(
                f"Locker {locker.label} is out of service. Your parcel is safe inside; "
                "a technician has been called.",
                locker=locker.label,
            )
        kind = _KIND_OF_ROLE[role]
        busy = ledger.doors.unfinished_for(locker.label)
        if busy is not None:
            if busy.kind == kind and busy.state == "OPEN":
                with ledger.tx():
                    self._accept(now, role, source)
                return self._result(ROLE_OF_CODE[role], locker.label, parcel)
            raise InvalidState(f"Locker {locker.label} is busy. Please try again in a moment.")
        with ledger.tx():
            self._accept(now, role, source)
            op = ledger.doors.add(
                kind, locker.label, parcel.parcel_id, now, actor=ROLE_OF_CODE[role]
            )
            ledger.audit.record(
                now, ROLE_OF_CODE[role], f"{kind}.started", locker.label, parcel_id=parcel.parcel_id
            )
        if await self.doors.open(op):
            return self._result(ROLE_OF_CODE[role], locker.label, parcel)
        self.doors.record_jam(op)
        raise DoorJammed(
            f"The door of locker {locker.label} did not open. Your parcel is safe inside; "
            "a technician has been called.",
            locker=locker.label,
        )

    # --- the courier's choices while a door is open -------------------------

    async def doesnt_fit(self, label: str) -> DoorOutcome:
        """Release this locker once its door is shut, then open the next size up."""
        return await self._courier_choice(label, "doesnt_fit")

    async def courier_cancel(self, label: str) -> DoorOutcome:
        """Release this locker once its door is shut; the parcel stays expected."""
        return await self._courier_choice(label, "cancel")

    async def _courier_choice(self, label: str, intent: str) -> DoorOutcome:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        op = ledger.doors.unfinished_for(label)
        if op is None or op.kind != "delivery" or op.state != "OPEN":
            raise InvalidState(f"No delivery is open at locker {label}.", locker=label)
        with ledger.tx():
            op = ledger.doors.update(op, now, intent=intent)
            ledger.audit.record(now, "courier", f"delivery.{intent}", label, parcel_id=op.parcel_id)
        if await self.doors.door_state(label) is DoorState.SHUT:
            return await self.door_closed(op)
        return DoorOutcome(label, "delivery", "awaiting_close", op.parcel_id)

    # --- doors closing ------------------------------------------------------

    async def poll_doors(
        self, states: dict[ChannelRef, DoorState] | None = None
    ) -> list[DoorOutcome]:
        """Finish every open door operation whose door now reads shut (`states`: one reading)."""
        ops = [op for op in self.ctx.ledger.doors.unfinished() if op.state == "OPEN"]
        if not ops:
            return []
        if states is None:
            states = await self.ctx.bank.read_doors()
        outcomes = []
        for op in ops:
            if states.get(self.ctx.channel(op.label)) is DoorState.SHUT:
                outcomes.append(await self.door_closed(op))
        return outcomes

    async def door_closed(self, op: DoorOp) -> DoorOutcome:
        """One transaction per closing: the state change, its audit row and its events.

        A closing the compartment's presence sensor contradicts (kiosk.service.presence)
        reopens the door once; at the second it is recorded as refused.
        """
        ctx, ledger = self.ctx, self.ctx.ledger
        finding = None
        current = ledger.doors.get(op.id)
        if current.state == "OPEN":
            finding = self.closing.finding(current)
            if finding is not None:
                reopened = await self.closing.reopen_once(current, finding)
                if reopened is not None:
                    return reopened
        now = ctx.clock.now()
        with ledger.tx():
            op = ledger.doors.get(op.id)
            if op.state != "OPEN":
                raise InvalidState(f"Locker {op.label} has no open door operation.")
            ledger.doors.update(op, now, state="DONE")
            ledger.outbox.add(now, "door.closed", door_body(op))
            if finding is not None:
                result = self.closing.refuse(op, finding, now)
            else:
                result = self._apply_close(op, now)
        if op.intent != "doesnt_fit":
            return DoorOutcome(op.label, op.kind, result, op.parcel_id)
        parcel = ledger.parcels.get(op.parcel_id or "")
        size = ledger.parcels.locker(op.label).size
        try:
            nxt = await self.reserve_and_open(parcel, size.rank + 1)
        except NoLockerAvailable:
            err = NoLockerAvailable(
                "No larger locker is free. Please keep the parcel; the sender has been told.",
                parcel_id=parcel.parcel_id,
            )
            return DoorOutcome(op.label, op.kind, result, op.parcel_id, error=err)
        except KioskError as exc:
            return DoorOutcome(op.label, op.kind, result, op.parcel_id, error=exc)
        return DoorOutcome(op.label, op.kind, result, op.parcel_id, next=nxt)

    def _apply_close(self, op: DoorOp, now: datetime) -> str:
        ctx, ledger = self.ctx, self.ctx.ledger
        locker = ledger.parcels.locker(op.label)
        if op.kind in ("technician", "reopen"):
            ledger.audit.record(now, op.actor, "door.closed", op.label, op=op.id)
            return "closed"
        parcel = ledger.parcels.get(op.parcel_id or "")
        if op.kind == "delivery" and op.intent:
            # The parcel is not in here: the locker lets go of it whatever its status
            # (a technician may have taken it out of service meanwhile).
            if locker.parcel_id == parcel.parcel_id:
                changes: dict[str, object] = {"parcel_id": None, "reserved_until": None}
                if locker.status is LockerStatus.RESERVED:
                    changes["status"] = LockerStatus.AVAILABLE
                ledger.parcels.update_locker(locker, now, **changes)
            ledger.audit.record(
                now,
                "courier",
                "locker.released",
                op.label,
                parcel_id=parcel.parcel_id,
                intent=op.intent,
            )
            return "released"
        if op.kind == "delivery":
            mark_delivered(ctx, parcel, locker, now, "courier")
            return "delivered"
        final = ParcelStatus.PICKED_UP if op.kind == "pickup" else ParcelStatus.RETURNED
        if parcel.status in PARCEL_FINAL:
            # Settled meanwhile (a technician's check): the door cycle changes nothing.
            ledger.audit.record(
                now,
                op.actor,
                "door.closed",
                op.label,
                parcel_id=parcel.parcel_id,
                settled=parcel.status.value,
            )
            return "closed"
        check_parcel_move(parcel.status, final)
        ledger.parcels.update(parcel, now, status=final, closed_at=now, needs_check=False)
        locker_changes: dict[str, object] = {"parcel_id": None, "needs_check": False}
        if locker.status is LockerStatus.OCCUPIED:
            locker_changes["status"] = LockerStatus.AVAILABLE
        ledger.parcels.update_locker(locker, now, **locker_changes)
        ledger.codes.drop(parcel.parcel_id)
        event = "parcel.picked_up" if final is ParcelStatus.PICKED_UP else "parcel.returned"
        ledger.outbox.add(now, event, {"parcel_id": parcel.parcel_id, "locker": op.label})
        ledger.audit.record(now, op.actor, event, parcel.parcel_id, locker=op.label)
        return "picked_up" if final is ParcelStatus.PICKED_UP else "returned"

    @staticmethod
    def _result(role: str, label: str, parcel: ParcelRow) -> CodeResult:
        return CodeResult(role, label, parcel.parcel_id, Size(parcel.size).value)
