"""A technician's screen taken off again while Textual is still building it (a slow machine).

Pushing a screen only queues its compose; building the door grid, its tabs and
tables takes many turns of the event loop, longer still on a loaded kiosk. A
logout, the idle timeout, a lost daemon or the app closing can pop the screen in
that window: Textual prunes its widgets and still runs its mount. The tests
push and pop in the same turn of the loop, so the screen has not composed a
thing when it is taken off: exactly the slow machine's ordering, every time.
"""

from __future__ import annotations

import pytest
from ui_support import at_keypad, until

from kiosk.ui.screens.entry import HomeScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal
from kiosk.ui.screens.notice import UnreachableScreen


@pytest.mark.parametrize(
    ("leave", "lands_on"),
    [("go_home", HomeScreen), ("show_unreachable", UnreachableScreen)],
    ids=["logout-or-idle", "daemon-lost"],
)
async def test_a_maintenance_screen_popped_before_it_is_built(rig, leave, lands_on):
    async with at_keypad(rig.socket) as (app, pilot):
        screen = MaintenanceScreen("t1")
        app.push_screen(screen)
        getattr(app, leave)()  # same turn of the loop: the screen's compose has not run
        await until(pilot, lambda: screen.is_mounted, what="the popped screen's mount")
        await until(pilot, lambda: isinstance(app.screen, lands_on), what=lands_on.__name__)
        await until(pilot, lambda: not screen.is_running, what="the popped screen gone")
        assert app.return_code is None  # the app still runs: no exception ended it
        if lands_on is HomeScreen:
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, PinModal), what="PIN modal")
    # leaving run_test re-raises whatever exception the app ended on


async def test_the_app_closing_while_a_maintenance_screen_is_built(rig):
    async with at_keypad(rig.socket) as (app, _pilot):
        app.push_screen(MaintenanceScreen("t1"))
        # leaving now shuts the app down before the screen has composed
    assert app.return_code in (None, 0)
