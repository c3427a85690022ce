"""Opening a door and proving it: journal first, pulse, then believe only the door sensor."""

from __future__ import annotations

from firmware_bridge.bank import BridgeError, DoorState
from kiosk.domain.errors import DoorStateUnknown, HardwareError
from kiosk.domain.status import LockerStatus
from kiosk.ledger.records import DoorOp
from kiosk.service.context import ServiceContext
from kiosk.service.transitions import settle_in_doubt


class DoorDriver:
    """Pulses locks and waits on sensors; records what it saw in the journal and the outbox.

    Three outcomes of a pulse the board acknowledged: the door is read open
    (done), read shut to the end of the wait (a jam, after the retries), or
    not read at all at the end of the wait (unknown: it may be open). An
    unknown one keeps its door operation unfinished and the locker flagged;
    supervision settles it (`reconcile`) once the door reads again.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._in_doubt: dict[int, DoorOp] = {}  # op id -> op whose door could not be read

    async def door_state(self, label: str) -> DoorState:
        """One reading of this door's board only (a full scan of 13 boards takes ~0.4 s).

        A read that fails (a timeout, an exception reply, a broken pin) is UNKNOWN.
        """
        ref = self.ctx.channel(label)
        try:
            states = await self.ctx.bank.read_doors({(ref.bus, ref.unit)})
        except BridgeError:
            return DoorState.UNKNOWN
        return states.get(ref, DoorState.UNKNOWN)

    async def wait_open(self, label: str, timeout_s: float) -> DoorState:
        """OPEN once the sensor reports it; else, after `timeout_s` (monotonic), the last reading
        (SHUT, or UNKNOWN if the door could not be read at the end)."""
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            state = await self.door_state(label)
            if state is DoorState.OPEN or clock.monotonic() >= deadline:
                return state
            await self.ctx.sleep(self.ctx.poll_s)

    async def open(self, op: DoorOp) -> bool:
        """Pulse, wait for the sensor, retry per policy. True = door seen open, False = jammed.

        A board that does not take the first pulse (offline, refusing) raises
        HardwareError at once: the bus has made its retries, no door-open wait
        follows and the operation is abandoned, so no pulse can come late.
        A door that cannot be read after an acknowledged pulse raises
        DoorStateUnknown (see `record_unknown`).
        """
        policy = self.ctx.policy
        ref = self.ctx.channel(op.label)
        for attempt in range(1 + policy.unlock_retries):
            try:
                await self.ctx.bank.unlock(ref)
            except BridgeError as exc:
                if attempt:
                    return False  # its door was read shut after the first pulse: a jam
                self.abandon(op, exc)
                raise HardwareError(
                    f"The lock controller of locker {op.label} did not answer. "
                    "Nothing was changed; please try again later.",
                    locker=op.label,
                ) from None
            state = await self.wait_open(op.label, policy.door_open_timeout_s)
            if state is DoorState.OPEN:
                self.record_open(op)
                return True
            if state is DoorState.UNKNOWN:
                self.record_unknown(op)
                raise DoorStateUnknown(
                    f"Locker {op.label} was unlocked, but its door cannot be read: it may be "
                    "open. If it is, finish what you came for and close it. "
                    "A technician has been called.",
                    locker=op.label,
                )
        return False

    def record_unknown(self, op: DoorOp) -> None:
        """Pulsed, door unread: flag the locker, keep the parcel and the operation as they are.

        The operation stays unfinished, so the door opening is no forced door
        and the locker is not handed out; `reconcile` settles it once the door
        reads again (as a start does after a crash), or the next start does.
        """
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            ledger.parcels.update_locker(ledger.parcels.locker(op.label), now, needs_check=True)
            ledger.audit.record(now, "kiosk", "door.unknown", op.label, op=op.id, kind=op.kind)
        self._in_doubt[op.id] = op
        self.ctx.observer.door_operation("unknown")

    def in_doubt(self) -> list[DoorOp]:
        """Door operations whose door could not be read after its pulse, oldest first."""
        return sorted(self._in_doubt.values(), key=lambda op: op.id)

    def reconcile(self, op: DoorOp, door: DoorState) -> None:
        """The door of an operation in doubt reads again: settle it as a start would."""
        self._in_doubt.pop(op.id, None)
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            current = ledger.doors.get(op.id)
            if current.state not in ("PENDING", "OPEN"):
                return  # settled meanwhile (a technician's recover)
            settle_in_doubt(self.ctx, current, now, door.value)

    def record_open(self, op: DoorOp) -> None:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        body = door_body(op)
        with ledger.tx():
            ledger.doors.update(op, now, state="OPEN")
            ledger.outbox.add(now, "door.opened", body)
            extra = {"reason": "reopen", "role": body["role"]} if "role" in body else {}
            ledger.audit.record(
                now, op.actor or op.kind, "door.opened", op.label, op=op.id, **extra
            )
        self.ctx.observer.door_operation("opened")

    def record_jam(self, op: DoorOp) -> None:
        """The door never opened: alarm, locker out of service (its parcel stays recorded)."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            locker = ledger.parcels.locker(op.label)
            changes: dict[str, object] = {"reserved_until": None, "note": "door_jammed"}
            if locker.status is LockerStatus.RESERVED:
                changes["parcel_id"] = None  # the courier's parcel never went in
            if locker.status is not LockerStatus.OUT_OF_SERVICE:
                changes["status"] = LockerStatus.OUT_OF_SERVICE
            ledger.parcels.update_locker(locker, now, **changes)
            ledger.doors.update(op, now, state="FAILED")
            attempts = 1 + self.ctx.policy.unlock_retries
            ledger.outbox.add(now, "door.jammed", {"label": op.label, "attempts": attempts})
            if locker.status is not LockerStatus.OUT_OF_SERVICE:
                ledger.outbox.add(
                    now, "locker.out_of_service", {"label": op.label, "reason": "door_jammed"}
                )
            ledger.audit.record(now, "kiosk", "door.jammed", op.label, op=op.id, kind=op.kind)
        self.ctx.observer.door_operation("jammed")

    def abandon(self, op: DoorOp, error: BridgeError) -> None:
        """Undo a door operation whose pulse the board never took (a reserved locker goes free)."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            locker = ledger.parcels.locker(op.label)
            if op.kind == "delivery" and locker.status is LockerStatus.RESERVED:
                ledger.parcels.update_locker(
                    locker, now, status=LockerStatus.AVAILABLE, parcel_id=None, reserved_until=None
                )
            ledger.doors.update(op, now, state="FAILED")
            ledger.audit.record(
                now, "kiosk", "door.unreachable", op.label, op=op.id, kind=op.kind, error=error.code
            )
        self.ctx.observer.door_operation("unreachable")


def door_body(op: DoorOp) -> dict[str, object]:
    """A `door.opened` / `door.closed` body: `reason` is the operation's kind, or `reopen`
    (with the `role` it was reopened for) for a visit's reopen and a presence reopening."""
    body: dict[str, object] = {"label": op.label, "parcel_id": op.parcel_id, "reason": op.kind}
    if op.kind == "reopen" or op.reopened:
        body.update(reason="reopen", role=op.actor)
    return body
