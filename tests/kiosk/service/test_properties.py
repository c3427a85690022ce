"""Random interleavings of every keypad, cloud, technician and clock action keep the ledger sound.

A hypothesis RuleBasedStateMachine drives the real LockerService on a real
GpioLockBank (gpiozero MockFactory pins), a real SQLite file and the door
simulator. Each machine instance owns a fresh event loop, temp dir, pin
factory and code key. After every step `check_invariants` reads the file over
a second connection with plain SQL, and a few checks only a live rig can make
run beside it (no journal row left PENDING, at most one OPEN row per door and
only while that door is open, final parcel statuses stay final).

Expected refusals (KioskError) are fine; any other exception fails, and so
does a KioskError that a single-threaded, healthy rig must never produce
(ConcurrentUpdate, LedgerError, HardwareError). Door closings, sweeps,
supervision, recovery and lockout resets must never be refused at all.

Two bugs this machine found (a technician's open door handed to a courier;
a parcel held by two lockers after "doesn't fit" on a locker taken out of
service) are fixed, and both paths are exercised on every run.
KIOSK_PROPERTY_EXAMPLES=1000 makes a long hunt.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support.clock import FakeClock
from support.invariants import FINAL, check_invariants
from support.rig import DEFAULT_LOCKERS, Bank, build_bank

from kiosk.clock import from_text
from kiosk.config.model import PolicyConfig
from kiosk.domain.codes import code_digest
from kiosk.domain.errors import ConcurrentUpdate, HardwareError, KioskError, LedgerError
from kiosk.domain.sizes import Size
from kiosk.service.results import CodeResult, DoorOutcome

T = TypeVar("T")

LABELS = [label for label, _ in DEFAULT_LOCKERS]
SIZE_OF = {label: Size(size) for label, size in DEFAULT_LOCKERS}
#: A jammed attempt costs 2 x door_open_timeout_s. The simulator opens a door within a
#: few ms; the margin is for a loaded CI box (a slow "open" would be a false jam).
POLICY = PolicyConfig(door_open_timeout_s=0.1, unlock_retries=1)
#: KioskErrors that mean the rig or the product is broken, never a refusal to a user.
NEVER = (ConcurrentUpdate, LedgerError, HardwareError)

#: Paths of two fixed bugs, always on: technicians open AVAILABLE lockers (which must not
#: then be handed to a courier), and lockers go out of service while a delivery door is open.
HUNT_TECH_OPEN = True
HUNT_OOS_RELEASE = True

SIZES = st.sampled_from(list(Size))
LABEL = st.sampled_from(LABELS)
DIGITS = st.text("0123456789", min_size=6, max_size=6)
TYPED = DIGITS | st.text("0123456789 -", min_size=0, max_size=9)
#: Clock jumps in minutes: inside a hold, hours, past a pickup window, a week offline,
#: and a little way back (NTP correcting a fast clock).
JUMP = st.one_of(
    st.integers(1, 30),
    st.integers(31, 24 * 60),
    st.integers(24 * 60, 8 * 24 * 60),
    st.integers(-30, -1),
)


class LockerBankMachine(RuleBasedStateMachine):
    """One bank from an empty ledger; the model keeps only what the cloud would know: codes."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.mkdtemp(prefix="kiosk-prop-")
        self.path = os.path.join(self.tmp, "ledger.db")
        self.factory = MockFactory()
        self.key = os.urandom(32)
        self.clock = FakeClock()
        self.rig: Bank = self.loop.run_until_complete(self._start(frozenset(), frozenset()))
        self.reader = sqlite3.connect(self.path)
        self.codes: dict[str, dict[str, str]] = {}  # parcel_id -> role -> plaintext code
        self.closed: dict[str, str] = {}  # parcel_id -> its final status, once it had one
        self.serial = 0

    # --- the rig ------------------------------------------------------------

    async def _start(self, open_doors: frozenset[str], jammed: frozenset[str]) -> Bank:
        rig = build_bank(self.path, self.factory, self.key, self.clock, policy=POLICY)
        rig.doors.jammed |= jammed
        await rig.gpio.start()  # claims the pins: pull-ups drive every sensor high ...
        rig.doors.start()  # ... the simulator shuts every door; reopen those that were open
        for label in open_doors:
            rig.doors.open(label)
        await rig.service.start()  # recovery reads the doors
        return rig

    async def _stop(self) -> None:
        await self.rig.doors.stop()
        await self.rig.gpio.close()
        self.rig.ledger.close()

    def teardown(self) -> None:
        try:
            self.loop.run_until_complete(self._stop())
        finally:
            self.loop.close()
            self.reader.close()
            self.factory.reset()
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def _idle_relays(self) -> None:
        """Let running pulses end and the simulator see them end, before anything else.

        A pulse that ends while the loop stands still between two steps would
        otherwise leave the simulator believing the relay is still on, and the
        next unlock of that door would look like a jam; and a door shut while
        its lock is still energised springs open again on the simulator's next
        tick, or not, depending on thread timing. Both made runs irreproducible.
        """
        relays = [self.factory.pin(relay) for relay, _ in self.rig.doors.pins.values()]
        while any(pin.state for pin in relays):
            await asyncio.sleep(0.005)
        self.rig.doors.tick(self.loop.time())

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def settled() -> T:
            await self._idle_relays()
            return await make()

        return self.loop.run_until_complete(settled())

    def attempt(self, make: Callable[[], Awaitable[T]]) -> T | None:
        """Run one async use case; a refusal is an outcome, anything else fails the test."""
        try:
            return self.run(make)
        except NEVER:
            raise
        except KioskError:
            return None

    def attempt_sync(self, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except NEVER:
            raise
        except KioskError:
            return None

    # --- reading the ledger (plain SQL) and the doors -----------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        return list(self.reader.execute(sql, params))

    def parcels_in(self, *statuses: str) -> list[str]:
        marks = ", ".join("?" for _ in statuses)
        sql = f"SELECT parcel_id FROM parcels WHERE status IN ({marks}) ORDER BY parcel_id"
        return [pid for (pid,) in self.query(sql, statuses)]

    def open_op_labels(self, kind: str | None = None) -> list[str]:
        sql = "SELECT label FROM door_ops WHERE state = 'OPEN'"
        rows = self.query(sql + " AND kind = ?", (kind,)) if kind else self.query(sql)
        return sorted(label for (label,) in rows)

    def status_of(self, label: str) -> str:
        return self.query("SELECT status FROM lockers WHERE label = ?", (label,))[0][0]

    def open_doors(self) -> list[str]:
        return [label for label in LABELS if self.rig.doors.is_open(label)]

    def pick_label(self, data: st.DataObject) -> str:
        """Any locker, but often one with a door operation in flight (where races live)."""
        busy = self.open_op_labels()
        return data.draw(st.sampled_from(busy) | LABEL if busy else LABEL, label="locker")

    def new_parcel_id(self) -> str:
        self.serial += 1
        return f"P{self.serial}"

    # --- checks on what a use case handed back ------------------------------

    def check_opened(self, res: CodeResult | None) -> None:
        """Write, then verify: a door reported open for someone is open, with one journal row."""
        if res is None:
            return
        assert self.rig.doors.is_open(res.locker), f"{res} but the door of {res.locker} is shut"
        ops = self.query(
            "SELECT kind FROM door_ops WHERE label = ? AND state = 'OPEN'", (res.locker,)
        )
        assert len(ops) == 1, f"{res}: locker {res.locker} has open journal rows {ops}"
        if res.role == "courier":
            assert SIZE_OF[res.locker].fits(Size(res.size)), f"{res}: the parcel does not fit"

    def check_outcomes(self, outcomes: list[DoorOutcome] | DoorOutcome | None) -> None:
        if outcomes is None:
            return
        for outcome in outcomes if isinstance(outcomes, list) else [outcomes]:
            self.check_opened(outcome.next)

    def shut(self, label: str, via_supervision: bool = False) -> None:
        """Someone shuts a door; a poll (or a supervision pass) settles it and never refuses."""

        async def close_then_poll() -> list[DoorOutcome]:
            self.rig.doors.close(label)
            if via_supervision:
                return (await self.rig.service.supervise()).outcomes
            return await self.rig.service.poll_doors()

        self.check_outcomes(self.run(close_then_poll))

    def courier_choice(
        self, label: str, shut_first: bool, choose: Callable[[str], Awaitable[DoorOutcome]]
    ) -> None:
        """The courier presses a button, the door still open or already shut (after the pulse)."""

        async def press() -> DoorOutcome:
            if shut_first:
                self.rig.doors.close(label)
            return await choose(label)

        self.check_outcomes(self.attempt(press))

    def open_and_maybe_close(
        self, make: Callable[[], Awaitable[CodeResult]], then_close: bool
    ) -> None:
        """Open a door through a use case; with then_close the person also shuts it again."""
        res = self.attempt(make)
        self.check_opened(res)
        if res is not None and then_close:
            self.shut(res.locker)

    # --- the cloud, and a bank with no cloud --------------------------------

    @initialize(sizes=st.lists(SIZES, max_size=4))
    def announce_some(self, sizes: list[Size]) -> None:
        for size in sizes:
            self._announce(size)

    @rule(size=SIZES)
    def announce(self, size: Size) -> None:
        self._announce(size)

    def _announce(self, size: Size) -> None:
        ann = self.rig.service.announce(size, self.new_parcel_id())
        self.codes[ann.parcel_id] = {"delivery": ann.delivery_code, "pickup": ann.pickup_code}

    @rule(size=SIZES, delivery=DIGITS, pickup=DIGITS, hours=st.none() | st.integers(1, 72))
    def reserve_from_cloud(self, size: Size, delivery: str, pickup: str, hours: int | None) -> None:
        """The cloud's reservation.create: digests only, maybe a deliver-by deadline."""
        pid = self.new_parcel_id()
        deliver_by = self.clock.now() + timedelta(hours=hours) if hours else None
        made = self.attempt_sync(
            lambda: self.rig.service.create_reservation(
                pid,
                size,
                code_digest(self.key, delivery),
                code_digest(self.key, pickup),
                deliver_by=deliver_by,
            )
        )
        if made is not None:
            self.codes[pid] = {"delivery": delivery, "pickup": pickup}

    @precondition(lambda self: self.codes)
    @rule(data=st.data())
    def cancel_reservation(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.codes)), label="parcel")
        self.attempt_sync(lambda: self.rig.service.cancel_reservation(pid))

    # --- at the keypad ------------------------------------------------------

    @precondition(lambda self: self.parcels_in("EXPECTED"))
    @rule(data=st.data(), then_close=st.booleans())
    def deliver(self, data: st.DataObject, then_close: bool) -> None:
        """A courier types an expected parcel's code; maybe puts it in and shuts the door."""
        pid = data.draw(st.sampled_from(self.parcels_in("EXPECTED")), label="parcel")
        code = self.codes[pid]["delivery"]
        self.open_and_maybe_close(lambda: self.rig.service.submit_code(code), then_close)

    @precondition(lambda self: self.open_op_labels("delivery"))
    @rule(data=st.data(), shut_first=st.booleans())
    def doesnt_fit(self, data: st.DataObject, shut_first: bool) -> None:
        """The courier presses "doesn't fit", with the door still open or already shut."""
        label = data.draw(st.sampled_from(self.open_op_labels("delivery")), label="locker")
        self.courier_choice(label, shut_first, self.rig.service.doesnt_fit)

    @precondition(lambda self: self.open_op_labels("delivery"))
    @rule(data=st.data(), shut_first=st.booleans())
    def courier_cancel(self, data: st.DataObject, shut_first: bool) -> None:
        label = data.draw(st.sampled_from(self.open_op_labels("delivery")), label="locker")
        self.courier_choice(label, shut_first, self.rig.service.courier_cancel)

    @precondition(lambda self: self.parcels_in("DELIVERED", "EXPIRED"))
    @rule(data=st.data(), then_close=st.booleans())
    def pickup(self, data: st.DataObject, then_close: bool) -> None:
        pid = data.draw(st.sampled_from(self.parcels_in("DELIVERED", "EXPIRED")), label="parcel")
        code = self.codes[pid]["pickup"]
        self.open_and_maybe_close(lambda: self.rig.service.submit_code(code), then_close)

    @rule(typed=TYPED)
    def wrong_code(self, typed: str) -> None:
        """Random digits (or junk): almost always wrong, and counted by the limiter."""
        self.check_opened(self.attempt(lambda: self.rig.service.submit_code(typed)))

    @precondition(lambda self: self.parcels_in("EXPIRED"))
    @rule(data=st.data(), code=DIGITS, then_close=st.booleans())
    def collect(self, data: st.DataObject, code: str, then_close: bool) -> None:
        """The cloud schedules a return with a fresh code's digest; a courier types it."""
        pid = data.draw(st.sampled_from(self.parcels_in("EXPIRED")), label="parcel")
        scheduled = self.attempt_sync(
            lambda: self.rig.service.schedule_return(pid, code_digest(self.key, code))
        )
        if scheduled is None:
            return
        self.codes[pid]["return"] = code
        self.open_and_maybe_close(lambda: self.rig.service.submit_code(code), then_close)

    @rule()
    def reset_lockout(self) -> None:
        self.rig.service.reset_lockout()

    # --- doors --------------------------------------------------------------

    @rule(data=st.data())
    def toggle_jam(self, data: st.DataObject) -> None:
        """From now on this door does (or no longer does) spring open on a pulse."""
        self.rig.doors.jammed ^= {self.pick_label(data)}

    @precondition(lambda self: self.open_doors())
    @rule(data=st.data(), via_supervision=st.booleans())
    def close_door(self, data: st.DataObject, via_supervision: bool) -> None:
        self.shut(data.draw(st.sampled_from(self.open_doors()), label="door"), via_supervision)

    @rule(label=LABEL)
    def force_door(self, label: str) -> None:
        """A door pulled open with no unlock; supervision sees it (two agreeing reads)."""
        self.rig.doors.open(label)
        for _ in range(2):
            self.check_outcomes(self.run(self.rig.service.supervise).outcomes)

    # --- time ---------------------------------------------------------------

    @rule(minutes=JUMP, then_sweep=st.booleans())
    def clock_jump(self, minutes: int, then_sweep: bool) -> None:
        """Time passes (or NTP steps back a little); maybe the scheduler's sweep runs."""
        self.clock.advance(minutes=minutes)
        if then_sweep:
            self.rig.service.sweep()

    @precondition(lambda self: self.parcels_in("DELIVERED"))
    @rule(data=st.data(), late=st.integers(0, 120))
    def expire_via_sweep(self, data: st.DataObject, late: int) -> None:
        """Jump to just past one parcel's pickup deadline, then sweep."""
        pid = data.draw(st.sampled_from(self.parcels_in("DELIVERED")), label="parcel")
        (deadline,) = self.query("SELECT expires_at FROM parcels WHERE parcel_id = ?", (pid,))[0]
        target = from_text(deadline) + timedelta(minutes=late)
        if target > self.clock.now():
            self.clock.current = target
        self.rig.service.sweep()

    @precondition(lambda self: self.parcels_in("DELIVERED"))
    @rule(data=st.data(), hours=st.integers(-2, 96))
    def extend(self, data: st.DataObject, hours: int) -> None:
        """The cloud's parcel.extend (a deadline that is not later is refused)."""
        pid = data.draw(st.sampled_from(self.parcels_in("DELIVERED")), label="parcel")
        (deadline,) = self.query("SELECT expires_at FROM parcels WHERE parcel_id = ?", (pid,))[0]
        later = from_text(deadline) + timedelta(hours=hours)
        self.attempt_sync(lambda: self.rig.service.extend(pid, later))

    # --- technician and start-up --------------------------------------------

    @rule(data=st.data(), in_service=st.booleans())
    def set_service(self, data: st.DataObject, in_service: bool) -> None:
        label = self.pick_label(data)
        if not (HUNT_OOS_RELEASE or in_service) and label in self.open_op_labels("delivery"):
            return  # BUG_OOS_RELEASE
        self.attempt_sync(lambda: self.rig.service.set_service(label, in_service, "property"))

    @rule(data=st.data(), then_close=st.booleans())
    def technician_open(self, data: st.DataObject, then_close: bool) -> None:
        label = self.pick_label(data)
        if not HUNT_TECH_OPEN and self.status_of(label) == "AVAILABLE":
            return  # BUG_TECH_OPEN
        self.open_and_maybe_close(lambda: self.rig.service.open_door(label, "property"), then_close)

    @precondition(lambda self: self.query("SELECT 1 FROM lockers WHERE needs_check = 1"))
    @rule(data=st.data(), inside=st.booleans())
    def resolve_check(self, data: st.DataObject, inside: bool) -> None:
        flagged = [r[0] for r in self.query("SELECT label FROM lockers WHERE needs_check = 1")]
        label = data.draw(st.sampled_from(sorted(flagged)), label="locker")
        self.attempt_sync(lambda: self.rig.service.resolve_check(label, inside, "property"))

    @rule()
    def recover(self) -> None:
        """What start-up does after a crash, here with the doors as they are."""
        self.rig.service.recover()

    @rule()
    def restart(self) -> None:
        """The daemon restarts: ledger reopened, pins reclaimed, recovery run; doors stay put."""
        open_doors = frozenset(self.open_doors())
        jammed = frozenset(self.rig.doors.jammed)
        self.run(self._stop)
        self.rig = self.loop.run_until_complete(self._start(open_doors, jammed))

    # --- after every step ---------------------------------------------------

    @invariant()
    def ledger_invariants(self) -> None:
        assert not self.rig.ledger.conn.in_transaction, "a ledger transaction was left open"
        check_invariants(self.reader)

    @invariant()
    def journal_matches_doors(self) -> None:
        pending = self.query("SELECT id, kind, label FROM door_ops WHERE state = 'PENDING'")
        assert not pending, f"journal rows left PENDING after their step: {pending}"
        for label, count in self.query(
            "SELECT label, count(*) FROM door_ops WHERE state = 'OPEN' GROUP BY label"
        ):
            assert count == 1, f"locker {label} has {count} OPEN journal rows"
            assert self.rig.doors.is_open(label), f"locker {label}: journal OPEN, door shut"

    @invariant()
    def final_is_final(self) -> None:
        marks = ", ".join("?" for _ in FINAL)
        sql = f"SELECT parcel_id, status FROM parcels WHERE status IN ({marks})"
        now = dict(self.query(sql, FINAL))
        for pid, status in self.closed.items():
            assert now.get(pid) == status, f"parcel {pid} left final status {status}"
        self.closed.update(now)


SETTINGS = settings(
    # KIOSK_PROPERTY_EXAMPLES=1000 for a long hunt; the default keeps the suite quick.
    max_examples=int(os.environ.get("KIOSK_PROPERTY_EXAMPLES", "40")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.timeout(600)
def test_random_interleavings_keep_the_ledger_sound() -> None:
    run_state_machine_as_test(LockerBankMachine, settings=SETTINGS)
