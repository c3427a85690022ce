"""Helpers of the keypad tests: each screen reached the way a person reaches it, on a rig."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.widgets import DataTable
from ui_support import built, click, door_on_screen, on_top, until

from kiosk.ui.app import KioskApp
from kiosk.ui.screens.entry import CodeScreen
from kiosk.ui.screens.help import HelpScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal, ReasonModal
from kiosk.ui.screens.notice import ErrorScreen

PIN = "471108"


async def _home(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    pass


async def _entry(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await pilot.press(*"1234")
    await until(pilot, lambda: on_top(app, CodeScreen))


async def _open(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    parcel = await admin.call("parcels.announce", size="M")
    await pilot.press(*parcel["delivery_code"], "enter")
    await until(pilot, lambda: door_on_screen(app))


async def _error(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await pilot.press(*"000000", "enter")
    await until(pilot, lambda: on_top(app, ErrorScreen))


async def _pin(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await pilot.press("f2")
    await until(pilot, lambda: on_top(app, PinModal))


async def _maintenance(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    await pilot.press("f2", *PIN, "enter")
    screen = await built(pilot, MaintenanceScreen)
    await until(pilot, lambda: screen.query_one("#grid", DataTable).row_count == 4)


async def _help(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await click(pilot, "#help")
    await until(pilot, lambda: on_top(app, HelpScreen))


async def _aftercare(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    """A pickup's door shut: "Door didn't open?" and "I left something" beside "Done"."""
    parcel = await admin.call("parcels.announce", size="S")
    opened = await admin.call("code.submit", code=parcel["delivery_code"])
    rig.doors.close(opened["locker"])
    finished = False

    async def poll() -> None:
        nonlocal finished
        finished = (await admin.call("courier.done", locker=opened["locker"]))["finished"]

    while not finished:  # the daemon sees the door shut (the test's deadline bounds this)
        await poll()
        if not finished:
            await pilot.pause(0.02)
    await pilot.press(*parcel["pickup_code"], "enter")
    await until(pilot, lambda: door_on_screen(app) and app.screen.token)
    rig.doors.close(opened["locker"])
    await until(pilot, lambda: app.screen.finished == "picked_up", what="picked up")
    await until(pilot, lambda: all(w.display for w in app.screen.query("#reopen, #left")))


async def _reason(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await _maintenance(app, pilot, admin, rig)
    await click(pilot, "#out")
    await until(pilot, lambda: on_top(app, ReasonModal))


SCREENS: dict[str, Callable[[KioskApp, Any, Any, Any], Awaitable[None]]] = {
    "home": _home,
    "entry": _entry,
    "open": _open,
    "error": _error,
    "pin": _pin,
    "maintenance": _maintenance,
    "reason": _reason,
    "help": _help,
    "aftercare": _aftercare,
}
