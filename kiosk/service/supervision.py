"""Door supervision: every door watched on every poll; unasked-for movements become alarms.

One reading of the whole bank per poll. Closings finish their door
operations (AccessFlows); on top of that, per door:

* a door that opens with no door operation behind it -> `door.forced`;
* a door open longer than `policy.left_open_s` -> `door.left_open` (once per
  opening) and a prompt repeated every `left_open_s` for the screen;
* `unknown_after` failed reads in a row -> the door is UNKNOWN (never a
  guessed open or shut); logged once, and its recovery once. When it reads
  again, it is compared with what it was before the outage: the same state
  is no movement (no second door.forced for a door still open), a different
  one is an edge like any other;
* flapping reed switches: a change counts only once `confirm_reads`
  consecutive readings agree;
* a door operation whose door could not be read after its pulse (unknown,
  DoorDriver) is settled on the first reading of its door that works, as a
  start settles what a crash interrupted; an open door is then watched as
  one found open at start.

Monotonic time drives every timer here, so a wall-clock jump cannot fire
(or silence) an alarm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from firmware_bridge.bank import BridgeError, ChannelRef, DoorState
from kiosk.service.access import AccessFlows
from kiosk.service.context import ServiceContext
from kiosk.service.presence import IdleWatch
from kiosk.service.results import DoorOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoorAlert:
    """Something the screen (and the technician) should know about a door."""

    label: str
    kind: str  # forced | left_open | unknown | reads_again | closed_unattended | occupied | missing
    open_s: float = 0.0


@dataclass
class PollReport:
    outcomes: list[DoorOutcome] = field(default_factory=list)
    alerts: list[DoorAlert] = field(default_factory=list)


@dataclass
class _Door:
    stable: DoorState | None = None  # None until the first good reading
    candidate: DoorState | None = None
    candidate_since: float = 0.0  # when the candidate reading was first seen
    agreeing: int = 0
    failures: int = 0
    opened_at: float | None = None
    left_open_sent: bool = False
    last_prompt: float = 0.0
    unattended: bool = False  # open with no door operation behind it
    before_unknown: DoorState | None = None  # the state it had when it became UNKNOWN


class DoorSupervisor:
    def __init__(
        self,
        ctx: ServiceContext,
        access: AccessFlows,
        confirm_reads: int = 2,
        unknown_after: int = 3,
    ) -> None:
        self.ctx = ctx
        self.access = access
        self.confirm_reads = max(1, confirm_reads)
        self.unknown_after = max(1, unknown_after)
        self.doors: dict[str, _Door] = {label: _Door() for label in ctx.channels}
        self.idle = IdleWatch(ctx, self.confirm_reads)

    def state(self, label: str) -> DoorState:
        """What supervision believes now: OPEN, SHUT, or UNKNOWN (also before the first read)."""
        return self.doors[label].stable or DoorState.UNKNOWN

    async def poll(self) -> PollReport:
        """Read every door once, finish closings, raise alarms."""
        try:
            states = await self.ctx.bank.read_doors()
        except BridgeError as exc:
            log.debug("door read failed: %s", exc)
            states = {}
        report = PollReport(outcomes=await self._finish_closings(states))
        busy = {op.label for op in self.ctx.ledger.doors.unfinished()}
        now = self.ctx.clock.monotonic()
        for label, ref in self.ctx.channels.items():
            reading = states.get(ref, DoorState.UNKNOWN)
            report.alerts.extend(self._track(label, reading, label in busy, now))
        self._reconcile(states, now)
        if states:  # presence sensors: idle lockers that hold what they should not, or lost it
            report.alerts.extend(DoorAlert(label, kind) for label, kind in self.idle.poll(states))
        return report

    def _reconcile(self, states: dict[ChannelRef, DoorState], now: float) -> None:
        """Settle each door operation in doubt whose door reads again."""
        doors = self.access.doors
        for op in doors.in_doubt():
            reading = states.get(self.ctx.channel(op.label), DoorState.UNKNOWN)
            if reading is DoorState.UNKNOWN:
                continue
            doors.reconcile(op, reading)
            log.info(
                "door %s reads %s again: its door operation is settled", op.label, reading.value
            )
            door = self.doors[op.label]
            door.stable, door.candidate, door.agreeing = reading, None, 0
            if reading is DoorState.OPEN:
                # As found open at start: watched for left-open, its closing recorded.
                door.opened_at = door.opened_at if door.opened_at is not None else now
                door.unattended = True
            else:
                door.opened_at, door.left_open_sent, door.unattended = None, False, False

    async def _finish_closings(self, states: dict[ChannelRef, DoorState]) -> list[DoorOutcome]:
        if not states:
            return []
        return await self.access.poll_doors(states)

    def _track(self, label: str, reading: DoorState, busy: bool, now: float) -> list[DoorAlert]:
        door = self.doors[label]
        if reading is DoorState.UNKNOWN:
            door.failures += 1
            door.candidate, door.agreeing = None, 0
            if door.failures == self.unknown_after and door.stable is not DoorState.UNKNOWN:
                log.warning(
                    "door %s: sensor unreadable %d times in a row; state unknown",
                    label,
                    door.failures,
                )
                door.before_unknown, door.stable = door.stable, DoorState.UNKNOWN
                return [DoorAlert(label, "unknown")]
            return []
        alerts: list[DoorAlert] = []
        if door.failures >= self.unknown_after:
            log.info("door %s: sensor reads again (%s)", label, reading.value)
            alerts.append(DoorAlert(label, "reads_again"))
        door.failures = 0
        if door.stable is None:
            door.stable = reading  # first reading: a baseline, not an edge
            if reading is DoorState.OPEN:
                door.opened_at, door.unattended = now, not busy
        elif reading is not door.stable:
            if door.candidate is reading:
                door.agreeing += 1
            else:
                door.candidate, door.agreeing, door.candidate_since = reading, 1, now
            if door.agreeing >= self.confirm_reads:
                alerts.extend(self._edge(label, door, reading, busy, door.candidate_since))
        else:
            door.candidate, door.agreeing = None, 0
        if door.stable is DoorState.OPEN:
            alerts.extend(self._left_open(label, door, now))
        return alerts

    def _edge(
        self, label: str, door: _Door, reading: DoorState, busy: bool, since: float
    ) -> list[DoorAlert]:
        """A confirmed change; `since` is when it was first seen (monotonic)."""
        was = door.stable
        door.stable, door.candidate, door.agreeing = reading, None, 0
        if was is DoorState.UNKNOWN:  # reads again: compare with the state before the outage
            was = door.before_unknown
            if was is None or was is reading:
                # Never read before (a baseline, as at start), or as it was: no movement.
                # A door open all along keeps its opening time and its alarms.
                if was is None and reading is DoorState.OPEN:
                    door.opened_at, door.unattended = since, not busy
                return []
        ledger, wall = self.ctx.ledger, self.ctx.clock.now()
        if reading is DoorState.OPEN:
            door.opened_at, door.left_open_sent = since, False
            door.unattended = not busy
            if busy:
                return []
            with ledger.tx():
                ledger.outbox.add(wall, "door.forced", {"label": label, "was": _name(was)})
                ledger.audit.record(wall, "kiosk", "door.forced", label)
            log.warning("door %s opened with no unlock: door.forced", label)
            return [DoorAlert(label, "forced")]
        opened_for = since - door.opened_at if door.opened_at is not None else 0.0
        unattended = door.unattended
        door.opened_at, door.left_open_sent, door.unattended = None, False, False
        if not unattended or was is not DoorState.OPEN:
            return []  # a flow's closing is recorded by that flow
        with ledger.tx():
            ledger.outbox.add(
                wall, "door.closed", {"label": label, "parcel_id": None, "reason": "unattended"}
            )
            ledger.audit.record(
                wall, "kiosk", "door.closed_unattended", label, open_s=round(opened_for)
            )
        return [DoorAlert(label, "closed_unattended", opened_for)]

    def _left_open(self, label: str, door: _Door, now: float) -> list[DoorAlert]:
        limit = float(self.ctx.policy.left_open_s)
        if door.opened_at is None or now - door.opened_at < limit:
            return []
        open_s = now - door.opened_at
        if not door.left_open_sent:
            door.left_open_sent, door.last_prompt = True, now
            ledger, wall = self.ctx.ledger, self.ctx.clock.now()
            with ledger.tx():
                ledger.outbox.add(wall, "door.left_open", {"label": label, "open_s": round(open_s)})
                ledger.audit.record(wall, "kiosk", "door.left_open", label, open_s=round(open_s))
            return [DoorAlert(label, "left_open", open_s)]
        if now - door.last_prompt >= limit:
            door.last_prompt = now
            return [DoorAlert(label, "left_open", open_s)]
        return []


def _name(state: DoorState | None) -> str:
    return state.value if state is not None else "unknown"
