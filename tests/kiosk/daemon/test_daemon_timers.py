"""What the running daemon does as time passes: technician sessions go idle, the scheduler sweeps.

The daemon is the real one (DaemonRig: GPIO mock pins, a real Unix socket),
driven through its API. Its system clock is injected (`Daemon(clock=...)`, a
constructor argument, no product change): a `SteppedClock` is real time plus
steps a test takes, wall and monotonic together, as time passing looks to the
daemon's TrustedClock, which therefore follows each step. So a 15-minute
hold, a 300 s session limit or a 3-day pickup window passes in an instant,
at the real limits of the product.

The scheduler's interval is the daemon's own `sweep_every_s` (a constructor
argument; in production `policy.sweep_minutes`, at least one minute). No test
here calls `service.sweep()`: every expiry and release below is the daemon's
own doing. A finished sweep is seen by the `trusted_time` row it writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.clock import SteppedClock
from support.daemon_rig import DaemonRig, rig_config

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiError
from kiosk.api.sessions import Sessions
from kiosk.clock import from_text
from kiosk.daemon.app import SESSION_IDLE_S, Daemon
from kiosk.daemon.notify import Notifier
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk.ledger.db import Ledger

WAIT_S = 10.0  # generous: other runs share the machine; nothing asserts on elapsed time
FAST_SWEEP_S = 0.05
SLOW_SWEEP_S = 3600.0  # only the sweeps at start-up run


def timed_rig(state: Path, clock: SteppedClock, sweep_every_s: float = SLOW_SWEEP_S) -> DaemonRig:
    """A DaemonRig whose daemon runs on `clock` and sweeps every `sweep_every_s`."""
    rig = DaemonRig(state)
    rig.daemon = Daemon(
        rig.config,
        clock=clock,
        bank=rig.bank,
        notifier=Notifier(""),
        sweep_every_s=sweep_every_s,
    )
    return rig


async def client(rig: DaemonRig, public: bool = False, events: list | None = None):
    on_event = (lambda e, d: events.append((e, d))) if events is not None else None
    c = AsyncApiClient(rig.socket, on_event=on_event)
    await c.connect(public=public, subscribe=events is not None)
    return c


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = WAIT_S
) -> Any:
    """Poll `check` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)


def trusted_time(rig: DaemonRig) -> str | None:
    """The time the daemon's last sweep recorded (each sweep writes it)."""
    assert rig.daemon.ledger is not None
    row = rig.daemon.ledger.conn.execute(
        "SELECT value FROM meta WHERE key = 'trusted_time'"
    ).fetchone()
    return row[0] if row else None


async def sweeps_pass(rig: DaemonRig, count: int = 2) -> None:
    """Wait until the daemon has finished at least `count` more sweeps of its own."""
    seen = {trusted_time(rig)}

    async def more() -> bool:
        seen.add(trusted_time(rig))
        return len(seen) > count

    await eventually(more, f"{count} sweeps by the daemon")


async def locker(api: AsyncApiClient, label: str) -> dict[str, Any]:
    return next(lk for lk in (await api.call("status"))["lockers"] if lk["label"] == label)


async def parcel(api: AsyncApiClient, parcel_id: str) -> dict[str, Any]:
    return next(p for p in (await api.call("parcels"))["parcels"] if p["parcel_id"] == parcel_id)


async def audit_rows(api: AsyncApiClient) -> list[tuple[str, str, str]]:
    rows = (await api.call("audit.tail", n=200))["rows"]
    return [(r["actor"], r["action"], r["subject"]) for r in rows]


async def deliver(rig: DaemonRig, admin: AsyncApiClient, size: str = "M") -> dict[str, Any]:
    """Announce a parcel and deliver it through a keypad connection; its announce + locker."""
    announced = await admin.call("parcels.announce", size=size)
    keypad = await client(rig, public=True)
    try:
        opened = await keypad.call("code.submit", code=announced["delivery_code"])
    finally:
        await keypad.close()
    assert opened["role"] == "courier", opened
    rig.doors.close(opened["locker"])

    async def delivered() -> bool:
        return (await parcel(admin, announced["parcel_id"]))["status"] == "DELIVERED"

    await eventually(delivered, "parcel DELIVERED")
    return {**announced, "locker": opened["locker"]}


# --- 1. technician sessions ------------------------------------------------------------


def test_sessions_expire_after_idle_time_not_age_and_stay_gone():
    """The unit: a session lives while it is used; `idle_s` of silence ends it for good."""
    now = [1000.0]
    sessions = Sessions(300.0, lambda: now[0])
    first = sessions.open("t1")
    assert sessions.touch(first.token) is first
    now[0] += 300.0  # exactly the limit: still live
    assert sessions.touch(first.token) is first
    now[0] += 299.0  # 599 s after login, 299 s idle
    assert sessions.touch(first.token) is first
    now[0] += 300.5
    assert sessions.touch(first.token) is None
    now[0] -= 600.0  # even if time seemed to come back, the token is gone
    assert sessions.touch(first.token) is None
    assert not sessions.close(first.token)
    for nothing in (None, "", "not-a-token"):
        assert sessions.touch(nothing) is None
    second = sessions.open("t1")
    assert second.token != first.token and len(second.token) >= 32
    assert sessions.touch(second.token) is second
    assert sessions.close(second.token) and sessions.touch(second.token) is None


async def test_an_idle_technician_session_is_refused_and_a_fresh_login_works(tmp_path):
    """Through the daemon, at its real limit (SESSION_IDLE_S, 300 s) on an injected clock."""
    clock = SteppedClock()
    async with timed_rig(tmp_path, clock) as rig:
        admin = await client(rig)
        await admin.call("tech.set_pin", technician_id="t1", pin="471108")
        keypad = await client(rig, public=True)
        login = await keypad.call("tech.login", pin="471108")
        assert login["technician_id"] == "t1" and login["idle_s"] == SESSION_IDLE_S == 300
        keypad.session = login["session"]
        assert "parcels" in await keypad.call("parcels")

        clock.advance(seconds=SESSION_IDLE_S - 1)
        await keypad.call("parcels")  # still live; its idle timer starts again
        clock.advance(seconds=SESSION_IDLE_S - 1)
        await keypad.call("parcels")  # 598 s after login: idle time counts, not age

        clock.advance(seconds=SESSION_IDLE_S + 1)
        for call, args in [("parcels", {}), ("door.open", {"locker": "A-1", "reason": "x"})]:
            with pytest.raises(ApiError) as err:
                await keypad.call(call, **args)
            assert err.value.code == "not_allowed", err.value.error
            assert "Log in" in err.value.error["message"]
        assert rig.doors.pulses["A-1"] == 0
        assert (await keypad.call("status"))["site"] == "rig-01"  # public calls go on

        fresh = await keypad.call("tech.login", pin="471108")
        assert fresh["session"] != login["session"]
        keypad.session = fresh["session"]
        opened = await keypad.call("door.open", locker="A-1", reason="after a new login")
        assert opened["role"] == "technician" and rig.doors.pulses["A-1"] == 1
        assert ("technician:t1", "technician.open", "A-1") in await audit_rows(admin)
        await keypad.close()
        await admin.close()


async def test_a_public_caller_with_a_dead_session_does_not_see_parcel_ids(tmp_path):
    clock = SteppedClock()
    async with timed_rig(tmp_path, clock) as rig:
        admin = await client(rig)
        delivered = await deliver(rig, admin, "M")
        keypad = await client(rig, public=True)
        assert (await locker(keypad, delivered["locker"]))["parcel_id"] is None
        keypad.session = "not-a-session-token"
        try:
            assert (await locker(keypad, delivered["locker"]))["parcel_id"] is None
            await admin.call("tech.set_pin", technician_id="t1", pin="471108")
            keypad.session = (await keypad.call("tech.login", pin="471108"))["session"]
            shown = (await locker(keypad, delivered["locker"]))["parcel_id"]
            assert shown == delivered["parcel_id"]  # a live technician session sees it
            clock.advance(seconds=SESSION_IDLE_S + 1)  # status polls do not keep it alive
            assert (await locker(keypad, delivered["locker"]))["parcel_id"] is None
        finally:
            await keypad.close()
            await admin.close()


# --- 2. the scheduler in the running daemon --------------------------------------------


def test_the_sweep_interval_is_policy_sweep_minutes_unless_given(tmp_path):
    config = rig_config(tmp_path, policy={"sweep_minutes": 7})
    assert Daemon(config, notifier=Notifier("")).sweep_every_s == 7 * 60.0
    assert Daemon(config, notifier=Notifier(""), sweep_every_s=0.5).sweep_every_s == 0.5


async def test_the_start_up_sweep_expires_a_parcel_whose_window_ended_while_stopped(tmp_path):
    async with DaemonRig(tmp_path) as rig:  # the system clock: a parcel delivered now
        admin = await client(rig)
        delivered = await deliver(rig, admin, "M")
        listed = await parcel(admin, delivered["parcel_id"])
        await admin.close()
    expires_at = from_text(listed["expires_at"])
    assert expires_at > datetime.now(UTC) + timedelta(days=2)  # the 3-day window

    # Switched on again an hour after the window ended.
    clock = SteppedClock(start=expires_at + timedelta(hours=1))
    async with timed_rig(tmp_path, clock) as rig:
        # Nothing has run on the loop since start() returned: only start() itself swept.
        ledger = rig.daemon.ledger
        assert ledger is not None
        pid, label = delivered["parcel_id"], delivered["locker"]
        assert ledger.parcels.get(pid).status is ParcelStatus.EXPIRED
        assert ledger.parcels.locker(label).status is LockerStatus.OCCUPIED  # the parcel is inside
        expired = [e.body for e in ledger.outbox.pending(limit=500) if e.type == "parcel.expired"]
        assert expired == [{"parcel_id": pid, "locker": label}]

        admin = await client(rig)
        assert (await parcel(admin, pid))["status"] == "EXPIRED"
        held = await locker(admin, label)
        assert held["status"] == "OCCUPIED" and held["parcel_id"] == pid
        assert ("kiosk", "parcel.expired", pid) in await audit_rows(admin)
        keypad = await client(rig, public=True)
        with pytest.raises(ApiError) as err:
            await keypad.call("code.submit", code=delivered["pickup_code"])
        assert err.value.code == "code_expired"
        assert rig.doors.pulses[label] == 0
        await keypad.close()
        await admin.close()


async def test_the_periodic_sweep_warns_then_expires_a_parcel_on_its_own(tmp_path):
    clock = SteppedClock()
    events: list[tuple[str, dict]] = []
    async with timed_rig(tmp_path, clock, sweep_every_s=FAST_SWEEP_S) as rig:
        admin = await client(rig, events=events)
        delivered = await deliver(rig, admin, "M")
        pid, label = delivered["parcel_id"], delivered["locker"]

        def sent(kind: str) -> list[dict]:
            return [d["body"] for e, d in events if e == "ledger.event" and d["type"] == kind]

        await sweeps_pass(rig)
        assert (await parcel(admin, pid))["status"] == "DELIVERED"
        assert not sent("parcel.expiring") and not sent("parcel.expired")

        clock.advance(days=2, minutes=1)  # less than a day left

        def published(kind: str) -> Callable[[], Awaitable[list[dict]]]:
            async def check() -> list[dict]:
                return sent(kind)

            return check

        warned = await eventually(published("parcel.expiring"), "parcel.expiring")
        assert [(w["parcel_id"], w["locker"]) for w in warned] == [(pid, label)]
        still = await parcel(admin, pid)
        assert still["status"] == "DELIVERED"
        assert from_text(warned[0]["expires_at"]) == from_text(still["expires_at"])

        clock.advance(days=1)  # the window is over

        async def expired() -> bool:
            return (await parcel(admin, pid))["status"] == "EXPIRED"

        await eventually(expired, "parcel EXPIRED by the daemon's sweep")
        gone = await eventually(published("parcel.expired"), "parcel.expired")
        assert gone == [{"parcel_id": pid, "locker": label}]
        assert len(sent("parcel.expiring")) == 1  # warned once, not on every sweep
        held = await locker(admin, label)
        assert held["status"] == "OCCUPIED" and held["parcel_id"] == pid
        actions = await audit_rows(admin)
        assert ("kiosk", "parcel.expiring", pid) in actions
        assert ("kiosk", "parcel.expired", pid) in actions
        await admin.close()


async def test_a_stale_hold_is_released_by_the_daemon_when_its_time_is_up(tmp_path):
    """A RESERVED locker with no door operation behind it goes free once its hold passes.

    No flow leaves such a locker (a courier's hold always has its door operation),
    so it is written into the ledger while the daemon is stopped, through the
    ledger's own API: a hold of `hold_minutes` (15) that began just now.
    """
    async with DaemonRig(tmp_path) as rig:
        admin = await client(rig)
        announced = await admin.call("parcels.announce", size="S")
        await admin.close()
    hold = timedelta(minutes=rig.config.policy.hold_minutes)
    start = datetime.now(UTC)
    ledger = Ledger.open(rig.config.ledger.path)
    try:
        with ledger.tx():
            ledger.parcels.update_locker(
                ledger.parcels.locker("A-2"),
                start,
                status=LockerStatus.RESERVED,
                parcel_id=announced["parcel_id"],
                reserved_until=start + hold,
            )
    finally:
        ledger.close()

    clock = SteppedClock(start=start + timedelta(minutes=1))
    async with timed_rig(tmp_path, clock, sweep_every_s=FAST_SWEEP_S) as rig:
        admin = await client(rig)
        await sweeps_pass(rig)
        kept = await locker(admin, "A-2")
        assert kept["status"] == "RESERVED" and kept["parcel_id"] == announced["parcel_id"]
        assert not any(action == "hold.expired" for _, action, _ in await audit_rows(admin))

        clock.advance(minutes=rig.config.policy.hold_minutes)  # 1 min past the hold's end

        async def released() -> bool:
            return (await locker(admin, "A-2"))["status"] == "AVAILABLE"

        await eventually(released, "A-2 released by the daemon's sweep")
        assert (await locker(admin, "A-2"))["parcel_id"] is None
        assert ("kiosk", "hold.expired", "A-2") in await audit_rows(admin)
        assert (await parcel(admin, announced["parcel_id"]))["status"] == "EXPECTED"
        await admin.close()


async def test_a_couriers_hold_is_kept_past_its_time_while_the_door_is_open(tmp_path):
    """In doubt, never free: the door is open, the parcel may be going in right now."""
    clock = SteppedClock()
    async with timed_rig(tmp_path, clock, sweep_every_s=FAST_SWEEP_S) as rig:
        admin = await client(rig)
        announced = await admin.call("parcels.announce", size="M")
        keypad = await client(rig, public=True)
        opened = await keypad.call("code.submit", code=announced["delivery_code"])
        label = opened["locker"]
        assert (await locker(admin, label))["status"] == "RESERVED"

        clock.advance(minutes=rig.config.policy.hold_minutes + 5)
        await sweeps_pass(rig)
        held = await locker(admin, label)
        assert held["status"] == "RESERVED" and held["parcel_id"] == announced["parcel_id"]
        assert not any(action == "hold.expired" for _, action, _ in await audit_rows(admin))

        rig.doors.close(label)

        async def delivered() -> bool:
            return (await locker(admin, label))["status"] == "OCCUPIED"

        await eventually(delivered, f"{label} OCCUPIED once its door shut")
        assert (await parcel(admin, announced["parcel_id"]))["status"] == "DELIVERED"
        await keypad.close()
        await admin.close()


def test_logins_never_used_again_do_not_pile_up():
    now = [0.0]
    sessions = Sessions(300, lambda: now[0])
    for _ in range(50):
        sessions.open("t1")
    assert len(sessions) == 50
    now[0] = 301.0
    kept = sessions.open("t2")  # a login drops every expired one
    assert len(sessions) == 1 and sessions.live(kept.token) is kept
    now[0] = 400.0
    assert sessions.live(kept.token) is kept
    assert kept.last_used == 301.0  # live() looks, touch() keeps it alive
    assert sessions.touch(kept.token) is kept and kept.last_used == 400.0
