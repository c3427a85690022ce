"""Opening a door and proving it: journal first, pulse, then believe only the door sensor."""

from __future__ import annotations

from firmware_bridge.bank import BridgeError, DoorState
from kiosk.domain.errors import HardwareError
from kiosk.domain.status import LockerStatus
from kiosk.ledger.records import DoorOp
from kiosk.service.context import ServiceContext


class DoorDriver:
    """Pulses locks and waits on sensors; records what it saw in the journal and the outbox."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def door_state(self, label: str) -> DoorState:
        """One reading of this door's board only (a full scan of 13 boards takes ~0.4 s)."""
        ref = self.ctx.channel(label)
        states = await self.ctx.bank.read_doors({(ref.bus, ref.unit)})
        return states.get(ref, DoorState.UNKNOWN)

    async def wait_for(self, label: str, want: DoorState, timeout_s: float) -> bool:
        """True once the sensor reports `want`; False after `timeout_s` (monotonic) without it."""
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            if await self.door_state(label) is want:
                return True
            if clock.monotonic() >= deadline:
                return False
            await self.ctx.sleep(self.ctx.poll_s)

    async def open(self, op: DoorOp) -> bool:
        """Pulse, wait for the sensor, retry per policy. True = door seen open.

        A bank that refuses every pulse (board offline) raises HardwareError
        after the wait: that is no fault of this door, so it is not jammed.
        """
        policy = self.ctx.policy
        ref = self.ctx.channel(op.label)
        bus_failures = 0
        attempts = 1 + policy.unlock_retries
        for _ in range(attempts):
            try:
                await self.ctx.bank.unlock(ref)
            except BridgeError:
                bus_failures += 1
            if await self.wait_for(op.label, DoorState.OPEN, policy.door_open_timeout_s):
                self.record_open(op)
                return True
        if bus_failures == attempts:
            self.abandon(op)
            raise HardwareError(
                f"The lock controller of locker {op.label} did not answer. "
                "Nothing was changed; please try again later.",
                locker=op.label,
            )
        return False

    def record_open(self, op: DoorOp) -> None:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            ledger.set_op(op, now, state="OPEN")
            ledger.event(
                now,
                "door.opened",
                {"label": op.label, "parcel_id": op.parcel_id, "reason": op.kind},
            )
            ledger.audit(now, op.actor or op.kind, "door.opened", op.label, op=op.id)

    def record_jam(self, op: DoorOp) -> None:
        """The door never opened: alarm, locker out of service (its parcel stays recorded)."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            locker = ledger.locker(op.label)
            changes: dict[str, object] = {"reserved_until": None, "note": "door_jammed"}
            if locker.status is LockerStatus.RESERVED:
                changes["parcel_id"] = None  # the courier's parcel never went in
            if locker.status is not LockerStatus.OUT_OF_SERVICE:
                changes["status"] = LockerStatus.OUT_OF_SERVICE
            ledger.set_locker(locker, now, **changes)
            ledger.set_op(op, now, state="FAILED")
            attempts = 1 + self.ctx.policy.unlock_retries
            ledger.event(now, "door.jammed", {"label": op.label, "attempts": attempts})
            if locker.status is not LockerStatus.OUT_OF_SERVICE:
                ledger.event(
                    now, "locker.out_of_service", {"label": op.label, "reason": "door_jammed"}
                )
            ledger.audit(now, "kiosk", "door.jammed", op.label, op=op.id, kind=op.kind)

    def abandon(self, op: DoorOp) -> None:
        """Undo a door operation that never reached the hardware (a reserved locker goes free)."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            locker = ledger.locker(op.label)
            if op.kind == "delivery" and locker.status is LockerStatus.RESERVED:
                ledger.set_locker(
                    locker, now, status=LockerStatus.AVAILABLE, parcel_id=None, reserved_until=None
                )
            ledger.set_op(op, now, state="FAILED")
            ledger.audit(now, "kiosk", "door.unreachable", op.label, op=op.id, kind=op.kind)
