"""The locker service: every use case of the bank behind one object (no hardware, MQTT or UI)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware_bridge.bank import BoardInfo, BridgeError, ChannelRef, LockBank
from kiosk.clock import Clock
from kiosk.config.model import LockerConfig, PolicyConfig
from kiosk.domain.layout import Cell, place
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus
from kiosk.ledger.audit import VerifyResult
from kiosk.ledger.db import Ledger
from kiosk.ledger.records import LockerRow, ParcelRow
from kiosk.service.access import AccessFlows
from kiosk.service.aftercare import Aftercare
from kiosk.service.commissioning import Commissioning
from kiosk.service.context import ServiceContext
from kiosk.service.doors import DoorDriver
from kiosk.service.maintenance import Maintenance
from kiosk.service.observer import ServiceObserver
from kiosk.service.presence import PresenceCheck, judge_presence, presence_by_label
from kiosk.service.reservations import Reservations
from kiosk.service.results import AnnouncedParcel, CodeResult, DoorOutcome
from kiosk.service.supervision import DoorSupervisor, PollReport
from kiosk.service.sweeper import Sweeper, SweepReport
from kiosk.service.technicians import Technicians


class LockerService:
    """The bank's use cases. Build it with `LockerService.build(...)`, then `start()`."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        doors = DoorDriver(ctx)
        self.doors = doors
        self._access = AccessFlows(ctx, doors)
        self._reservations = Reservations(ctx)
        self._maintenance = Maintenance(ctx, doors)
        self._sweeper = Sweeper(ctx)
        self.supervisor = DoorSupervisor(ctx, self._access)
        self._technicians = Technicians(ctx)
        self.commissioning = Commissioning(ctx)
        self._aftercare = Aftercare(ctx, self._access, self._maintenance)

    @classmethod
    def build(
        cls,
        ledger: Ledger,
        bank: LockBank,
        clock: Clock,
        code_key: bytes,
        lockers: tuple[LockerConfig, ...],
        policy: PolicyConfig | None = None,
        site_id: str = "site",
        poll_s: float = 0.05,
        observer: ServiceObserver | None = None,
    ) -> LockerService:
        channels: Mapping[str, ChannelRef] = {
            lk.label: ChannelRef(lk.bus, lk.unit, lk.channel) for lk in lockers
        }
        with ledger.tx():
            ledger.parcels.sync_lockers(lockers, clock.now())
        ctx = ServiceContext(
            ledger, bank, clock, code_key, channels, policy or PolicyConfig(), site_id, poll_s
        )
        if observer is not None:
            ctx.observer = observer
        ctx.layout = place(lockers)
        return cls(ctx)

    async def start(self) -> int:
        """Outputs off, then settle what a crash interrupted. Returns operations recovered.

        The doors are read once first, so each recovery's audit row says what
        the sensor showed (an open door is then watched by supervision, which
        raises door.left_open if it stays open).
        """
        await self.ctx.bank.start()
        doors: dict[str, str] = {}
        try:
            states = await self.ctx.bank.read_doors()
        except BridgeError:
            states = {}
        for label, ref in self.ctx.channels.items():
            doors[label] = states[ref].value if ref in states else "unknown"
        return self._maintenance.recover(doors)

    # --- reservations (the cloud's commands, or a bank with no cloud) -------

    def create_reservation(
        self,
        parcel_id: str,
        size: Size,
        delivery_digest: str,
        pickup_digest: str,
        order_id: str = "",
        deliver_by: datetime | None = None,
    ) -> ParcelRow:
        return self._reservations.create(
            parcel_id, size, delivery_digest, pickup_digest, order_id, deliver_by
        )

    def announce(self, size: Size, parcel_id: str | None = None) -> AnnouncedParcel:
        return self._reservations.announce(size, parcel_id)

    def cancel_reservation(self, parcel_id: str, actor: str = "cloud") -> ParcelRow:
        return self._reservations.cancel(parcel_id, actor)

    def extend(self, parcel_id: str, expires_at: datetime, actor: str = "cloud") -> ParcelRow:
        return self._reservations.extend(parcel_id, expires_at, actor)

    def schedule_return(
        self, parcel_id: str, return_digest: str, actor: str = "cloud"
    ) -> ParcelRow:
        return self._reservations.schedule_return(parcel_id, return_digest, actor)

    # --- at the keypad ------------------------------------------------------

    async def submit_code(self, code: str, source: str = "keypad") -> CodeResult:
        return await self._access.submit_code(code, source)

    async def doesnt_fit(self, label: str) -> DoorOutcome:
        return await self._access.doesnt_fit(label)

    async def courier_cancel(self, label: str) -> DoorOutcome:
        return await self._access.courier_cancel(label)

    async def poll_doors(self) -> list[DoorOutcome]:
        """Finish the door operations whose doors read shut now (no alarms: see `supervise`)."""
        return await self._access.poll_doors()

    async def supervise(self) -> PollReport:
        """One supervision pass: closings finished, forced / left-open / unknown doors raised."""
        return await self.supervisor.poll()

    # --- time ---------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> SweepReport:
        return self._sweeper.sweep(now)

    # --- technician ---------------------------------------------------------

    async def open_door(
        self,
        label: str,
        reason: str,
        actor: str = "technician",
        journal_with: Callable[[], None] | None = None,
    ) -> CodeResult:
        return await self._maintenance.open_door(label, reason, actor, journal_with)

    def set_service(
        self, label: str, in_service: bool, reason: str, actor: str = "technician"
    ) -> LockerRow:
        return self._maintenance.set_service(label, in_service, reason, actor)

    def resolve_check(
        self, label: str, parcel_inside: bool, reason: str, actor: str = "technician"
    ) -> LockerRow:
        return self._maintenance.resolve_check(label, parcel_inside, reason, actor)

    def reset_lockout(self, actor: str = "technician") -> None:
        """Reopen code entry and PIN entry (a technician's or the cloud's reset)."""
        self._maintenance.reset_lockout(actor)
        self._technicians.reset_lockout(actor)

    def verify_pin(self, pin: str) -> str:
        return self._technicians.verify(pin)

    def set_pin(
        self,
        technician_id: str,
        pin: str | None = None,
        pin_digest: str | None = None,
        actor: str = "technician",
    ) -> None:
        self._technicians.set_pin(technician_id, pin, pin_digest, actor)

    def technicians(self, actor: str) -> list[dict[str, Any]]:
        return self._technicians.roster(actor)

    def remove_technician(self, technician_id: str, actor: str) -> None:
        self._technicians.remove(technician_id, actor)

    def recover(self) -> int:
        return self._maintenance.recover()

    # --- reading ------------------------------------------------------------

    def lockers(self) -> list[LockerRow]:
        return self.ctx.ledger.parcels.lockers()

    def parcels(self, since: datetime | None = None) -> list[ParcelRow]:
        return self.ctx.ledger.parcels.select(since)

    def doors_opened_by(
        self, actor_prefix: str, since: datetime, label: str
    ) -> tuple[int, datetime | None]:
        """The doors seen open since then for actors `actor_prefix`* ("cloud:"): how many,
        and when `label`'s last was (None: not since then)."""
        return self.ctx.ledger.audit.doors_opened_by(actor_prefix, since, label)

    # --- read models for the layers above (api, cloud, daemon, ui) -----------

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def locker(self, label: str) -> LockerRow:
        return self.ctx.ledger.parcels.locker(label)

    def door_labels(self) -> list[str]:
        """Every configured locker label, in the configured order."""
        return list(self.ctx.channels)

    def door_busy(self, label: str) -> bool:
        """Has a door operation on this locker not been recorded as finished yet?"""
        return self.ctx.ledger.doors.unfinished_for(label) is not None

    def site_locked(self) -> bool:
        return self.ctx.ledger.codes.limiter().site_locked

    def outbox_depth(self) -> int:
        return self.ctx.ledger.outbox.depth()

    def audit_tail(self, count: int) -> list[dict[str, object]]:
        """The last `count` audit rows, oldest first."""
        return self.ctx.ledger.audit.tail(count)

    def verify_audit(self) -> VerifyResult:
        return self.ctx.ledger.audit.verify()

    def backup(self, dest: Path) -> None:
        self.ctx.ledger.backup(dest)

    def boards(self) -> list[BoardInfo]:
        return list(self.ctx.bank.describe())

    def presence(self) -> dict[str, bool | None]:
        """Each locker's parcel-presence sensor at the last poll: True (something inside),
        False (empty) or None (no sensor fitted, or its board did not answer)."""
        return presence_by_label(self.ctx)

    async def read_sensors(
        self,
        label: str | None = None,
        rounds: int = 3,
        presence: dict[str, list[bool | None]] | None = None,
    ) -> dict[str, set[str]]:
        """What each door sensor said over `rounds` sweeps; with `label`, only its board is read.

        `presence`, when given, is filled with what each presence sensor said in
        the same sweeps (read with the doors: no extra request).
        """
        channels = dict(self.ctx.channels)
        units = None
        if label is not None:
            channels = {label: channels[label]}
            units = {(channels[label].bus, channels[label].unit)}
        seen: dict[str, set[str]] = {label: set() for label in channels}
        for _ in range(rounds):
            states = await self.ctx.bank.read_doors(units)
            for label, ref in channels.items():
                seen[label].add(states[ref].value if ref in states else "unknown")
            if presence is not None:
                found = presence_by_label(self.ctx)
                for label in channels:
                    presence.setdefault(label, []).append(found.get(label))
            await asyncio.sleep(0.02)
        self.ctx.observer.selftest(self.ctx.clock.now())
        return seen

    async def presence_checks(self, label: str | None = None) -> list[PresenceCheck]:
        """Each locker's presence sensor over a short sweep, judged against the ledger
        (`judge_presence`): what selftest shows and `kiosk doctor` reports."""
        readings: dict[str, list[bool | None]] = {}
        await self.read_sensors(label, presence=readings)
        return self.judge_presence(readings)

    def judge_presence(self, readings: Mapping[str, list[bool | None]]) -> list[PresenceCheck]:
        """`readings` (label -> what its presence sensor said in a sweep) judged against
        what the ledger says each locker holds."""
        checks = []
        for row in self.ctx.ledger.parcels.lockers():
            if row.label in readings:
                holds = row.status is LockerStatus.OCCUPIED and bool(row.parcel_id)
                checks.append(judge_presence(row.label, row.status, holds, readings[row.label]))
        return checks

    def cloud_port(self) -> Ledger:
        """The outbox and inbox the cloud link drains and fills (the ledger implements them)."""
        return self.ctx.ledger

    def layout(self) -> tuple[Cell, ...]:
        """Where each compartment sits in the bank's front (config, or read from labels)."""
        return self.ctx.layout

    async def reopen(
        self, label: str, parcel_id: str | None, role: str, why: str, actor: str
    ) -> CodeResult:
        """A visit's door again: once if it did not open, or just after a pickup."""
        return await self._aftercare.reopen(label, parcel_id, role, why, actor)

    async def report_problem(
        self, label: str, parcel_id: str | None, role: str, actor: str
    ) -> CodeResult | None:
        """The locker to a technician; a courier's parcel to another locker (opened)."""
        return await self._aftercare.report(label, parcel_id, role, actor)
