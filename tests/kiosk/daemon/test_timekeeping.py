"""TrustedClock: follows the system clock, but not its jumps; and the sweep it drives.

The system clock here is scripted on both scales: `wall` (what the OS says
the time is) and `mono` (seconds that really passed). `tick` moves both, as
time passing does; `step` moves only the wall clock, as NTP, a bad RTC or
an operator's `date -s` does.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from gpiozero.pins.mock import MockFactory
from support.rig import build_bank

from kiosk.daemon.timekeeping import TrustedClock
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LOGGER = "kiosk.daemon.timekeeping"


class ScriptedClock:
    """A system clock a test moves: wall and monotonic, together or apart."""

    def __init__(self, wall: datetime = T0, mono: float = 1000.0) -> None:
        self.wall = wall
        self.mono = mono

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def tick(self, seconds: float) -> None:
        """Time passes: both clocks move."""
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def step(self, **delta: float) -> None:
        """The wall clock is set: only it moves."""
        self.wall += timedelta(**delta)


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.name == LOGGER and text in r.getMessage())


def test_follows_the_system_clock_and_its_small_corrections():
    system = ScriptedClock()
    clock = TrustedClock(system)
    assert clock.now() == T0
    system.tick(10)
    assert clock.now() == T0 + timedelta(seconds=10)
    system.step(seconds=30)  # an NTP step well within tolerance
    assert clock.now() == system.wall
    # NTP slewing: the wall clock runs 0.5 % fast for two hours; each reading follows it.
    for _ in range(120):
        system.tick(60)
        system.step(seconds=0.3)
        assert clock.now() == system.wall
    assert clock.jumps == 0
    assert clock.monotonic() == system.mono


@pytest.mark.parametrize("days", [10, -10], ids=["forward", "backward"])
def test_a_jump_is_not_followed_until_it_has_held_for_accept_after(caplog, days):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    system = ScriptedClock()
    clock = TrustedClock(system, accept_after=timedelta(hours=1))
    system.tick(60)
    before = clock.now()
    assert before == T0 + timedelta(minutes=1)

    system.step(days=days)
    assert clock.now() == before  # no monotonic time passed: no time passed
    system.tick(30)
    assert clock.now() == before + timedelta(seconds=30)
    for _ in range(58):  # the new time holds steady, minute after minute
        system.tick(60)
        assert clock.now() == before + timedelta(seconds=30 + 60 * (_ + 1))
    assert clock.jumps == 1
    assert warnings(caplog, "jumped") == 1  # logged once, not at every reading

    system.tick(89)
    assert clock.now() == before + timedelta(seconds=3599)  # 1 s short of the hour
    system.tick(1)  # one hour since the jump was first seen: accepted
    assert clock.now() == system.wall == T0 + timedelta(days=days, minutes=61)
    assert warnings(caplog, "accepting") == 1
    system.tick(5)
    assert clock.now() == system.wall  # and followed from now on
    assert clock.jumps == 1


def test_a_glitch_that_comes_back_is_never_accepted(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    system = ScriptedClock()
    clock = TrustedClock(system, accept_after=timedelta(hours=1))
    system.step(days=10)
    system.tick(1800)
    assert clock.now() == T0 + timedelta(seconds=1800)
    system.step(days=-10)  # back to the truth before the hour was up
    system.tick(1800)
    assert clock.now() == system.wall == T0 + timedelta(hours=1)
    assert warnings(caplog, "accepting") == 0


def test_a_jump_that_keeps_moving_restarts_the_wait(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    system = ScriptedClock()
    clock = TrustedClock(system, accept_after=timedelta(hours=1))
    system.step(days=3)
    assert clock.now() == T0
    system.tick(3000)
    system.step(days=3)  # a second, different jump: its own hour starts now
    assert clock.now() == T0 + timedelta(seconds=3000)
    system.tick(3000)
    assert clock.now() == T0 + timedelta(seconds=6000)
    assert clock.jumps == 2 and warnings(caplog, "jumped") == 2
    system.tick(600)
    assert clock.now() == system.wall


def test_at_start_a_wall_clock_before_the_last_trusted_time_is_not_believed(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    last_trusted = T0
    system = ScriptedClock(wall=datetime(1970, 1, 1, tzinfo=UTC))  # a Pi with no RTC
    clock = TrustedClock(system, last_trusted=last_trusted)
    assert clock.now() == last_trusted
    system.tick(90)
    assert clock.now() == last_trusted + timedelta(seconds=90)
    assert warnings(caplog, "before the last trusted time") == 1

    # Offline for hours: 1970 holds steady, but is never accepted (parcels stay their age).
    for _ in range(6):
        system.tick(3600)
        assert clock.now() == last_trusted + timedelta(seconds=90 + 3600 * (_ + 1))
    assert warnings(caplog, "stays before the last trusted time") == 1

    # NTP arrives: a real time after the last trusted one is a correction like any other.
    system.wall = last_trusted + timedelta(hours=7)
    assert clock.now() == last_trusted + timedelta(seconds=90 + 6 * 3600)
    system.tick(3600)
    assert clock.now() == system.wall


def test_at_start_a_wall_clock_after_the_last_trusted_time_is_used():
    system = ScriptedClock(wall=T0 + timedelta(days=2))  # switched off for two days
    clock = TrustedClock(system, last_trusted=T0)
    assert clock.now() == system.wall
    system.tick(1)
    assert clock.now() == system.wall and clock.jumps == 0


# --- the sweep on a trusted clock -------------------------------------------------


@pytest.fixture
async def trusted_bank(tmp_path, code_key):
    """A LockerService whose clock is a TrustedClock over a scripted system clock."""
    factory = MockFactory()
    system = ScriptedClock()
    clock = TrustedClock(system)
    rig = build_bank(str(tmp_path / "ledger.db"), factory, code_key, clock)
    await rig.gpio.start()
    rig.doors.start()
    await rig.service.start()
    try:
        yield rig, system
    finally:
        await rig.doors.stop()
        await rig.gpio.close()
        rig.ledger.close()
        factory.reset()


async def deliver(rig) -> tuple[str, str]:
    announced = rig.service.announce(Size.S)
    opened = await rig.service.submit_code(announced.delivery_code)
    rig.doors.close(opened.locker)
    outcomes = await rig.service.poll_doors()
    assert [o.result for o in outcomes] == ["delivered"]
    return opened.locker, announced.parcel_id


async def test_a_ten_day_wall_jump_does_not_expire_a_parcel_but_real_time_does(trusted_bank):
    rig, system = trusted_bank
    label, parcel_id = await deliver(rig)
    parcel = rig.ledger.parcels.get(parcel_id)
    assert parcel.expires_at == T0 + timedelta(days=3)  # the default pickup window

    system.step(days=10)  # a bad NTP step throws the wall clock ten days ahead
    report = rig.service.sweep()
    assert report.expired == 0
    assert rig.ledger.parcels.get(parcel_id).status is ParcelStatus.DELIVERED
    system.tick(1800)  # and it holds for a while, but not for accept_after (1 h) yet
    assert rig.service.sweep().expired == 0
    assert rig.ledger.parcels.get(parcel_id).status is ParcelStatus.DELIVERED

    # A glitch it was: the wall clock comes back. Then three real days pass.
    system.step(days=-10)
    system.tick(1800)
    for _ in range(3 * 24 - 2):  # 71 hours after delivery in all
        system.tick(3600)
        rig.service.sweep()
    assert rig.ledger.parcels.get(parcel_id).status is ParcelStatus.DELIVERED
    system.tick(3600)
    assert rig.service.sweep().expired == 1
    expired = rig.ledger.parcels.get(parcel_id)
    assert expired.status is ParcelStatus.EXPIRED
    assert rig.ledger.parcels.locker(label).status is LockerStatus.OCCUPIED  # still inside


async def test_monotonic_time_alone_expires_a_parcel_when_the_wall_clock_stands_still(
    trusted_bank,
):
    """The wall clock stuck (or set back) while days really pass: expiry still comes."""
    rig, system = trusted_bank
    _, parcel_id = await deliver(rig)
    system.mono += 3 * 24 * 3600 - 60  # real time passes; the wall clock does not move
    assert rig.service.sweep().expired == 0
    system.mono += 120
    assert rig.service.sweep().expired == 1
    assert rig.ledger.parcels.get(parcel_id).status is ParcelStatus.EXPIRED
