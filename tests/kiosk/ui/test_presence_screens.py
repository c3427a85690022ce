"""The door screen when a presence sensor refuses a closing: it asks once, then says why."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from support.daemon_proc import short_dir
from support.daemon_rig import DaemonRig
from ui_support import at_keypad, door_on_screen, screen_text, until

from kiosk.api.aclient import AsyncApiClient

WAIT_S = 15.0


async def until_async(pilot, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Let the app run until the daemon-side `check` holds (generous deadline)."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s"
        await pilot.pause(0.02)


async def test_courier_is_asked_to_put_the_parcel_in_then_told_it_was_not_delivered(tmp_path):
    state: Path = short_dir(tmp_path)
    async with DaemonRig(state, presence=True) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        ann = await admin.call("parcels.announce", size="S")
        async with at_keypad(rig.socket) as (app, pilot):
            await pilot.press(*ann["delivery_code"], "enter")
            await until(pilot, lambda: door_on_screen(app), what="door open")
            rig.doors.close("A-1")  # nothing put in
            want = "Locker A-1 looks empty. Please put the parcel in and close the door."
            await until(pilot, lambda: want in screen_text(app), what="put-it-in prompt")
            assert app.screen.finished is None and rig.doors.pulses["A-1"] == 2
            await until(pilot, lambda: rig.doors.is_open("A-1"), what="door open again")
            rows = []

            async def reopen_seen() -> bool:
                rows[:] = (await admin.call("audit.tail", n=50))["rows"]
                return sum(r["action"] == "door.opened" for r in rows) == 2

            await until_async(pilot, reopen_seen, "reopening seen by the daemon")
            rig.doors.close("A-1")  # still nothing
            await until(pilot, lambda: app.screen.finished == "not_delivered", what="refused")
            assert "the parcel was not delivered" in screen_text(app)
        await admin.close()


async def test_customer_is_asked_to_take_the_parcel_then_told_it_stays(tmp_path):
    state: Path = short_dir(tmp_path)
    async with DaemonRig(state, presence=True) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        ann = await admin.call("parcels.announce", size="S")
        await admin.call("code.submit", code=ann["delivery_code"])
        rig.put("A-1")
        rig.doors.close("A-1")
        async with at_keypad(rig.socket) as (app, pilot):

            async def delivered() -> bool:
                lockers = (await admin.call("status"))["lockers"]
                return any(lk["label"] == "A-1" and lk["status"] == "OCCUPIED" for lk in lockers)

            await until_async(pilot, delivered, "delivered")
            await pilot.press(*ann["pickup_code"], "enter")
            await until(pilot, lambda: door_on_screen(app), what="door open")
            rig.doors.close("A-1")  # the parcel left inside
            want = "Something is still in locker A-1. Please take your parcel and close the door."
            await until(pilot, lambda: want in screen_text(app), what="take-it prompt")
        await admin.close()
