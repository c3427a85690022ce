"""A technician's screen taken off again while Textual is still building it (a slow machine).

Pushing a screen only queues its compose; building the door grid, its tabs and
tables takes many turns of the event loop, longer still on a loaded kiosk. A
logout, the idle timeout, a lost daemon or the app closing can pop the screen in
that window: Textual prunes its widgets and still runs its mount. The tests
push and pop in the same turn of the loop, so the screen has not composed a
thing when it is taken off: exactly the slow machine's ordering, every time.
A screen popped later has its widgets pruned before its workers are cancelled:
a grid refresh in flight then comes back to a screen without a grid.
"""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, TabbedContent
from ui_support import at_keypad, built, on_top, screen_text, until

from kiosk.ui.app import DaemonEvent
from kiosk.ui.screens.entry import HomeScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal
from kiosk.ui.screens.notice import UnreachableScreen

PIN = "471108"


async def _session(app, admin) -> None:
    """A technician's session on the app's link, as a PIN typed in the modal leaves it."""
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    app.link.session = (await app.link.call("tech.login", pin=PIN))["session"]


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
        await until(pilot, lambda: on_top(app, lands_on), what=lands_on.__name__)
        await until(pilot, lambda: not screen.is_running, what="the popped screen gone")
        assert app.return_code is None  # the app still runs: no exception ended it
        if lands_on is HomeScreen:
            await pilot.press("f2")
            await until(pilot, lambda: on_top(app, PinModal), what="PIN modal")
    # leaving run_test re-raises whatever exception the app ended on


async def test_the_app_closing_while_a_maintenance_screen_is_built(rig):
    async with at_keypad(rig.socket) as (app, _pilot):
        app.push_screen(MaintenanceScreen("t1"))
        # leaving now shuts the app down before the screen has composed
    assert app.return_code in (None, 0)


async def test_a_daemon_event_reaching_a_maintenance_screen_being_built(rig, admin):
    async with at_keypad(rig.socket) as (app, pilot):
        await _session(app, admin)
        screen = MaintenanceScreen("t1")
        app.push_screen(screen)
        # The login's own ledger.event can come in while the screen is built; its refresh
        # could then fill a grid that is not there yet. The screen's mount refreshes anyway.
        app.on_daemon_event(DaemonEvent("ledger.event", {"action": "technician.login"}))
        assert [w.name for w in app.workers if w.node is screen] == []
        screen = await built(pilot, MaintenanceScreen)
        grid = screen.query_one("#grid", DataTable)
        await until(pilot, lambda: grid.row_count == 4, what="grid")
        assert app.return_code is None


async def test_the_language_switched_while_a_maintenance_screen_is_built(rig, admin):
    async with at_keypad(rig.socket) as (app, pilot):
        await _session(app, admin)
        screen = MaintenanceScreen("t1")
        app.push_screen(screen)
        app.action_language()  # F3 (or the language button) before the screen is there
        screen = await built(pilot, MaintenanceScreen)
        tabs = screen.query_one(TabbedContent)
        grid = screen.query_one("#grid", DataTable)
        assert str(tabs.get_tab("tab-doors").label) == "Türen"
        assert str(grid.columns["locker"].label) == "Fach"
        await until(pilot, lambda: grid.row_count == 4, what="grid")
        assert "Techniker" in screen_text(app) and "Technician" not in screen_text(app)
        assert app.return_code is None


async def test_a_maintenance_screen_popped_with_a_refresh_in_flight(rig, admin):
    async with at_keypad(rig.socket) as (app, pilot):
        await _session(app, admin)
        app.push_screen(MaintenanceScreen("t1"))
        screen = await built(pilot, MaintenanceScreen)
        screen.refresh_grid()  # what its timer does every second
        app.go_home()  # a logout meanwhile: Textual prunes the widgets, then the workers
        await until(pilot, lambda: not screen.is_running, what="the popped screen gone")
        assert app.return_code is None
