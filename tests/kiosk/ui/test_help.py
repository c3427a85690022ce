"""Help is one tap away: [site] help_phone and help_text on a Help screen reachable from every
public screen, the lockout screen, and shown whenever a door fails or its state is unknown."""

from __future__ import annotations

import pytest
from fit_support import FIT_SIZE, cut_off
from support.daemon_rig import DaemonRig
from test_customer import delivered
from ui_support import at_keypad, click, door_on_screen, make_app, on_top, screen_text, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui import i18n
from kiosk.ui.screens.door import OpenScreen
from kiosk.ui.screens.entry import CodeScreen, HomeScreen
from kiosk.ui.screens.help import HelpScreen
from kiosk.ui.screens.notice import ErrorScreen, LockoutScreen, UnreachableScreen

PHONE = "+49 30 1234567"
TEXT = "Customer service, every day 8-20."
SITE = {"help_phone": PHONE, "help_text": TEXT}


@pytest.fixture
async def helped(tmp_path):
    async with DaemonRig(tmp_path, site=SITE) as rig:
        yield rig


async def _help_and_back(app, pilot, screen_type) -> None:
    await click(pilot, "#help")
    await until(pilot, lambda: on_top(app, HelpScreen), what="help screen")
    await until(pilot, lambda: PHONE in screen_text(app), what="the phone")
    assert TEXT in screen_text(app)
    await click(pilot, "#help-back")
    await until(pilot, lambda: on_top(app, screen_type), what=f"back to {screen_type}")


async def test_help_is_one_tap_away_on_every_public_screen(helped):
    async with at_keypad(helped.socket) as (app, pilot):
        await until(pilot, lambda: app.help_info["phone"] == PHONE, what="help fetched")
        await _help_and_back(app, pilot, HomeScreen)
        await pilot.press("4", "2")
        await until(pilot, lambda: on_top(app, CodeScreen))
        await _help_and_back(app, pilot, CodeScreen)
        assert app.screen.digits == "42"  # nothing typed was lost
        await pilot.press("escape")
        await pilot.press(*"000000", "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen))
        await _help_and_back(app, pilot, ErrorScreen)
        parcel = await _announce(helped)
        app.go_home()
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        await _help_and_back(app, pilot, OpenScreen)
        app.show(LockoutScreen(120))
        await until(pilot, lambda: on_top(app, LockoutScreen))
        await _help_and_back(app, pilot, LockoutScreen)
        app.show(UnreachableScreen())
        await until(pilot, lambda: on_top(app, UnreachableScreen))
        await _help_and_back(app, pilot, UnreachableScreen)


async def _announce(rig):
    client = AsyncApiClient(rig.socket)
    await client.connect()
    try:
        return await client.call("parcels.announce", size="S")
    finally:
        await client.close()


@pytest.mark.parametrize("code", ["door_jammed", "door_state_unknown", "hardware_error"])
async def test_a_door_failure_says_whom_to_call_right_there(helped, code):
    async with at_keypad(helped.socket) as (app, pilot):
        await until(pilot, lambda: app.help_info["phone"] == PHONE, what="help fetched")
        app.show_error({"code": code}, retry=False)
        await until(pilot, lambda: on_top(app, ErrorScreen))
        await until(pilot, lambda: PHONE in screen_text(app), what="the phone on the error")
        assert TEXT in screen_text(app)


async def test_a_jammed_pickup_door_shows_the_help_phone(helped):
    """The real thing: the daemon finds the door jammed, the screen says whom to call."""
    client = AsyncApiClient(helped.socket)
    await client.connect()
    try:
        parcel = await delivered(helped, client)
    finally:
        await client.close()
    helped.doors.jammed.add(parcel["locker"])
    async with at_keypad(helped.socket) as (app, pilot):
        await until(pilot, lambda: app.help_info["phone"] == PHONE, what="help fetched")
        await pilot.press(*parcel["pickup_code"], "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen), timeout=8, what="error")
        await until(pilot, lambda: PHONE in screen_text(app), what="the phone")


async def test_without_help_keys_the_help_screen_still_says_what_to_do(rig):
    async with at_keypad(rig.socket) as (app, pilot):
        await click(pilot, "#help")
        await until(pilot, lambda: on_top(app, HelpScreen))
        assert "Please ask the staff nearby" in screen_text(app)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
async def test_the_help_screen_fits_800x480(helped, lang):
    app = make_app(helped.socket, language=lang)
    async with app.run_test(size=FIT_SIZE) as pilot:
        await until(pilot, lambda: app.help_info["phone"] == PHONE, what="help fetched")
        app.action_help()
        await until(pilot, lambda: on_top(app, HelpScreen))
        await pilot.pause()
        assert not cut_off(app)
        app.pop_screen()
        app.show_error({"code": "door_state_unknown"}, retry=False)
        await until(pilot, lambda: on_top(app, ErrorScreen))
        await pilot.pause()
        await pilot.pause()
        assert not cut_off(app), cut_off(app)
