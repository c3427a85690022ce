"""A courier at the keypad, against a real daemon on a GPIO bank with door physics."""

from __future__ import annotations

import pytest
from support.daemon_rig import DaemonRig
from support.rig import BACKENDS
from textual import events
from ui_support import at_keypad, click, door_on_screen, on_top, screen_text, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.entry import CodeScreen, HomeScreen
from kiosk.ui.screens.notice import ErrorScreen
from kiosk.ui.widgets import CodeDisplay, masked


async def locker_status(admin, label: str) -> str:
    status = await admin.call("status")
    return next(lk["status"] for lk in status["lockers"] if lk["label"] == label)


@pytest.mark.backends(*BACKENDS, reason="a delivery: the smoke flow of a courier on each backend")
async def test_delivery_masked_then_open_then_next_parcel_without_going_home(rig, admin):
    first = await admin.call("parcels.announce", size="S")
    second = await admin.call("parcels.announce", size="S")
    async with at_keypad(rig.socket) as (app, pilot):
        assert isinstance(app.screen, HomeScreen)
        code = first["delivery_code"]
        await pilot.press(*code[:3])  # digits at home go straight into code entry
        assert isinstance(app.screen, CodeScreen)
        assert str(app.screen.query_one(CodeDisplay).content) == masked(3)
        assert code[:3] not in screen_text(app)  # masked: the digits never show
        await pilot.press("backspace")
        assert str(app.screen.query_one(CodeDisplay).content) == masked(2)
        await pilot.press(code[2], *code[3:], "enter")
        await until(pilot, lambda: door_on_screen(app), what="door open screen")
        text = screen_text(app)
        assert "A-1" in text.split(" | ")  # the large label, in plain letters
        assert "Locker A-1 is open: place the parcel and close the door." in text
        assert rig.doors.is_open("A-1")
        assert not app.screen.query_one("#next").display  # not before the door is shut

        rig.doors.close("A-1")
        await until(pilot, lambda: app.screen.finished == "delivered", what="door.outcome")
        assert "Thank you! The parcel is stored in locker A-1." in screen_text(app)
        assert app.screen.query_one("#next").display
        await click(pilot, "#next")
        await until(pilot, lambda: on_top(app, CodeScreen) and app.screen.digits == "")
        await pilot.press(*second["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app), what="second door")
        assert app.screen.locker == "A-2"
        rig.doors.close("A-2")
        await until(pilot, lambda: app.screen.finished == "delivered")
    assert await locker_status(admin, "A-1") == "OCCUPIED"
    assert await locker_status(admin, "A-2") == "OCCUPIED"


async def test_next_code_typed_right_on_the_thank_you_screen(rig, admin):
    first = await admin.call("parcels.announce", size="S")
    second = await admin.call("parcels.announce", size="M")
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*first["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        rig.doors.close("A-1")
        await until(pilot, lambda: app.screen.finished == "delivered")
        await pilot.press(*second["delivery_code"], "enter")  # a scanner: digits then Enter
        await until(pilot, lambda: getattr(app.screen, "locker", "") == "B-1")


async def test_on_screen_keypad_buttons(rig, admin):
    parcel = await admin.call("parcels.announce", size="M")
    async with at_keypad(rig.socket) as (app, pilot):
        await click(pilot, "#key-9")
        await click(pilot, "#key-back")
        for digit in parcel["delivery_code"]:
            await click(pilot, f"#key-{digit}")
        await until(pilot, lambda: getattr(app.screen, "digits", "") == parcel["delivery_code"])
        await click(pilot, "#key-ok")
        await until(pilot, lambda: door_on_screen(app))
        assert app.screen.locker == "B-1"


async def test_doesnt_fit_opens_the_next_size_up(rig, admin):
    parcel = await admin.call("parcels.announce", size="M")
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        assert app.screen.locker == "B-1"
        await click(pilot, "#doesnt-fit")
        await until(pilot, lambda: "bigger locker opens" in screen_text(app))
        assert "close the door of locker B-1" in screen_text(app)
        rig.doors.close("B-1")  # the courier takes the parcel out and shuts B-1 ...
        await until(pilot, lambda: getattr(app.screen, "locker", "") == "C-1", what="C-1")
        assert "Locker C-1 is open: place the parcel" in screen_text(app)  # ... C-1 (L) opens
        assert rig.doors.is_open("C-1")
        rig.doors.close("C-1")
        await until(pilot, lambda: app.screen.finished == "delivered")
    assert await locker_status(admin, "B-1") == "AVAILABLE"
    assert await locker_status(admin, "C-1") == "OCCUPIED"


async def test_doesnt_fit_in_the_largest_locker_says_keep_the_parcel(rig, admin):
    parcel = await admin.call("parcels.announce", size="L")
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: getattr(app.screen, "locker", "") == "C-1")
        await click(pilot, "#doesnt-fit")
        await until(pilot, lambda: app.screen.choice == "doesnt_fit")
        rig.doors.close("C-1")
        await until(pilot, lambda: on_top(app, ErrorScreen))
        assert "No free locker fits this parcel right now" in screen_text(app)
        assert not app.screen.query("#retry")  # nothing to retry: keep the parcel


async def test_cancel_releases_the_locker_and_goes_home(rig, admin):
    parcel = await admin.call("parcels.announce", size="S")
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        await click(pilot, "#cancel")
        await until(pilot, lambda: "delivery is cancelled" in screen_text(app))
        rig.doors.close("A-1")
        await until(pilot, lambda: on_top(app, HomeScreen), what="home")
    assert await locker_status(admin, "A-1") == "AVAILABLE"
    listing = await admin.call("parcels")
    assert [p["status"] for p in listing["parcels"]] == ["EXPECTED"]


@pytest.mark.backends(*BACKENDS, reason="door physics: a jammed door is told by each backend")
async def test_jammed_door_moves_the_courier_to_the_next_locker(tmp_path, backend):
    # Each try waits 2 s for the sensor: long enough that "please wait" is seen even
    # when typing the code takes a loaded machine a second.
    policy = {"door_open_timeout_s": 2.0}
    async with DaemonRig(tmp_path, backend=backend, policy=policy) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        parcel = await admin.call("parcels.announce", size="S")
        rig.doors.jammed.add("A-1")
        async with at_keypad(rig.socket) as (app, pilot):
            await pilot.press(*parcel["delivery_code"], "enter")
            await until(pilot, lambda: on_top(app, CodeScreen) and app.screen.busy)
            assert "Opening the door, please wait" in screen_text(app)
            await until(pilot, lambda: door_on_screen(app), timeout=15)
            assert app.screen.locker == "A-2"
        assert rig.doors.pulses["A-1"] == 2  # tried, retried once, then given up
        assert await locker_status(admin, "A-1") == "OUT_OF_SERVICE"
        await admin.close()


@pytest.mark.backends(*BACKENDS, reason="door physics: a door left open is read from each backend")
async def test_left_open_door_prompts_to_close_it(rig, admin):
    parcel = await admin.call("parcels.announce", size="S")
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        # What the daemon's supervisor publishes after policy.left_open_s (10 s at the
        # least), sent through the daemon's real event hub and socket.
        rig.daemon.hub.publish("door.alert", {"label": "A-1", "kind": "left_open", "open_s": 120})
        await until(pilot, lambda: "Please close the door of locker A-1." in screen_text(app))


async def test_a_scanners_burst_of_keys_opens_the_door(rig, admin):
    """A USB scanner types the code and Enter faster than a screen can be pushed."""
    parcel = await admin.call("parcels.announce", size="S")
    async with at_keypad(rig.socket) as (app, pilot):
        for char in parcel["delivery_code"]:  # all queued at once, as a terminal delivers them
            app.post_message(events.Key(char, char))
        app.post_message(events.Key("enter", "\r"))
        await until(pilot, lambda: door_on_screen(app), what="door open")
        assert app.screen.locker == "A-1"
