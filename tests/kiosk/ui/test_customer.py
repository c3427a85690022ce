"""Customers and collectors at the keypad, wrong codes, lockouts, language, badge and idle."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from support.daemon_rig import DaemonRig
from support.rig import BACKENDS
from ui_support import SIZE, at_keypad, click, door_on_screen, make_app, on_top, screen_text, until

from kiosk.domain.codes import code_digest
from kiosk.ui.screens.entry import CodeScreen, HomeScreen
from kiosk.ui.screens.notice import ErrorScreen, LockoutScreen
from kiosk.ui.widgets import TopBar

UNUSED = "000000"  # the tests' parcels draw random codes; a clash is one in 10^5


async def delivered(rig, admin, size: str = "S") -> dict:
    """A parcel a courier has put in (through the admin connection): its codes and locker."""
    parcel = await admin.call("parcels.announce", size=size)
    opened = await admin.call("code.submit", code=parcel["delivery_code"])
    rig.doors.close(opened["locker"])
    for _ in range(200):
        done = await admin.call("courier.done", locker=opened["locker"])
        if done["finished"]:
            return {**parcel, "locker": opened["locker"]}
        await asyncio.sleep(0.02)
    raise AssertionError("delivery did not finish")


@pytest.mark.backends(*BACKENDS, reason="a pickup: the smoke flow of a customer on each backend")
async def test_pickup_opens_the_parcels_locker_then_thanks_and_home(rig, admin):
    parcel = await delivered(rig, admin)
    app = make_app(rig.socket, thanks_s=0.3, reopen_s=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await pilot.press(*parcel["pickup_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        assert app.screen.role == "customer" and app.screen.locker == "A-1"
        assert "Locker A-1 is open: take your parcel and close the door." in screen_text(app)
        assert not app.screen.query_one("#doesnt-fit").display  # no courier buttons here
        rig.doors.close("A-1")
        await until(pilot, lambda: "Have a nice day" in screen_text(app))
        await until(pilot, lambda: on_top(app, HomeScreen), what="home after thanks")
    listing = await admin.call("parcels")
    assert [p["status"] for p in listing["parcels"]] == ["PICKED_UP"]


async def test_collector_takes_an_expired_parcel_back(rig, admin):
    parcel = await delivered(rig, admin, "M")
    service = rig.daemon.service
    # The cloud's side: the pickup window passes, then a return code is issued.
    service.sweep(service.ctx.clock.now() + timedelta(days=4))
    service.schedule_return(parcel["parcel_id"], code_digest(service.ctx.code_key, "424242"))
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*"424242", "enter")
        await until(pilot, lambda: door_on_screen(app))
        assert app.screen.role == "collector"
        assert "Locker B-1 is open: take the parcel for return" in screen_text(app)
        rig.doors.close("B-1")
        await until(pilot, lambda: app.screen.finished == "returned")


@pytest.mark.backends(*BACKENDS, reason="door physics: a jammed door is told by each backend")
async def test_pickup_at_a_jammed_door_says_a_technician_is_called(rig, admin):
    parcel = await delivered(rig, admin)
    rig.doors.jammed.add("A-1")
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["pickup_code"], "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen), timeout=8)
        assert "The door did not open. A technician has been called" in screen_text(app)


async def test_wrong_code_says_how_many_tries_are_left_and_lets_you_retry(rig):
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*UNUSED, "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen))
        assert "That code is not valid. Check the code in your message. 4 tries left." in (
            screen_text(app)
        )
        await click(pilot, "#retry")
        await until(pilot, lambda: on_top(app, CodeScreen) and app.screen.digits == "")
        await pilot.press(*UNUSED, "enter")
        await until(pilot, lambda: "3 tries left" in screen_text(app))


async def test_german_texts_for_the_daemons_english_errors(rig):
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press("f3")
        assert "Willkommen" in screen_text(app)
        await pilot.press(*UNUSED, "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen))
        assert "Dieser Code ist ungültig" in screen_text(app)
        assert "Noch 4 Versuche." in screen_text(app)
        await click(pilot, "#language")  # and back, on the error screen itself
        await until(pilot, lambda: "4 tries left" in screen_text(app))


async def test_lockout_counts_down_then_entry_opens_again(tmp_path, backend):
    policy = {"max_failures": 2, "backoff_first_s": 2}
    now = [1000.0]  # the screen's countdown clock: it moves only when the test says so
    async with (
        DaemonRig(tmp_path, backend=backend, policy=policy) as rig,
        at_keypad(rig.socket, clock=lambda: now[0]) as (app, pilot),
    ):
        await pilot.press(*UNUSED, "enter")
        await until(pilot, lambda: "1 try left" in screen_text(app))
        await pilot.press(*UNUSED, "enter")
        await until(pilot, lambda: on_top(app, LockoutScreen))
        assert "Too many wrong codes. You can try again in:" in screen_text(app)
        assert "0:02" in screen_text(app)
        now[0] += 1
        await until(pilot, lambda: "0:01" in screen_text(app), what="tick")
        assert isinstance(app.screen, LockoutScreen)
        now[0] += 1
        await until(pilot, lambda: on_top(app, HomeScreen), what="home at 0:00")


async def test_site_lock_is_explained_and_shown_at_home(tmp_path, backend):
    async with (
        DaemonRig(tmp_path, backend=backend, policy={"daily_failure_budget": 1}) as rig,
        at_keypad(rig.socket) as (app, pilot),
    ):
        assert not app.screen.query_one("#paused").display
        await pilot.press(*UNUSED, "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen))
        assert "Code entry is paused at this locker bank for safety" in screen_text(app)
        await click(pilot, "#back")
        await until(pilot, lambda: app.site_locked)
        await until(pilot, lambda: app.screen.query_one("#paused").display)


async def test_a_bank_without_a_cloud_link_shows_no_offline_badge(rig):
    """No [mqtt] table: there is no link to be down, so no false alarm."""
    assert rig.config.mqtt is None
    async with at_keypad(rig.socket) as (app, pilot):
        # the first `status` answer has come (on the old keypad: online False)
        await until(pilot, lambda: app.online is False or getattr(app, "last_status", None))
        await pilot.pause()
        bar = app.screen.query_one(TopBar)
        assert bar.has_class("online") and "offline" not in screen_text(app)


async def test_idle_timeout_goes_home(rig):
    now = [1000.0]  # the app's idle clock: it moves only when the test says so
    app = make_app(rig.socket, idle_s=60, clock=lambda: now[0])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await pilot.press("1", "2")
        assert isinstance(app.screen, CodeScreen)
        now[0] += 59  # not yet idle long enough: the half-typed code stays
        app._idle_check()  # what its once-a-second timer runs, now, with no second waited
        await pilot.pause()
        assert isinstance(app.screen, CodeScreen)
        now[0] += 2  # idle long enough: the timer's next run goes home
        await until(pilot, lambda: on_top(app, HomeScreen), what="idle return home")
