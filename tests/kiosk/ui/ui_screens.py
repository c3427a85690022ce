"""Helpers of the keypad tests: each screen reached the way a person reaches it, on a rig."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.widgets import DataTable, ProgressBar
from ui_support import built, click, door_on_screen, on_top, until

from kiosk.ui.app import KioskApp
from kiosk.ui.screens.commission import CommissionScreen
from kiosk.ui.screens.entry import CodeScreen
from kiosk.ui.screens.help import HelpScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import CheckModal, PinModal, ReasonModal
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


async def _tab(app: KioskApp, pilot: Any, admin: Any, rig: Any, tab: str) -> MaintenanceScreen:
    """The maintenance screen with one of its tabs shown (`tab`: parcels, audit, ...)."""
    await _maintenance(app, pilot, admin, rig)
    screen = app.screen
    assert isinstance(screen, MaintenanceScreen)
    await click(pilot, f"#--content-tab-tab-{tab}")
    return screen


async def _parcels(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    for size in ("S", "L"):
        await admin.call("parcels.announce", size=size)
    screen = await _tab(app, pilot, admin, rig, "parcels")
    await until(pilot, lambda: screen.query_one("#parcels", DataTable).row_count == 2)


async def _audit(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    screen = await _tab(app, pilot, admin, rig, "audit")
    await until(pilot, lambda: screen.query_one("#audit", DataTable).row_count > 0)


async def _health(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    screen = await _tab(app, pilot, admin, rig, "health")
    await until(pilot, lambda: screen.query_one("#health", DataTable).row_count == 1)


async def _selftest(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    screen = await _tab(app, pilot, admin, rig, "selftest")
    await click(pilot, "#run-selftest")
    bar = screen.query_one("#progress", ProgressBar)
    await until(pilot, lambda: bar.total == 4 and bar.progress == 4, what="self-test done")


async def _commission(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    await _health(app, pilot, admin, rig)
    await click(pilot, "#commission")
    await built(pilot, CommissionScreen)


async def _check(app: KioskApp, pilot: Any, admin: Any, rig: Any) -> None:
    """What "Record check" asks of a flagged locker."""
    await _maintenance(app, pilot, admin, rig)
    app.push_screen(CheckModal("A-1"))
    await built(pilot, CheckModal)


#: The technician's screen, each tab and each screen and modal it leads to.
MAINTENANCE: dict[str, Callable[[KioskApp, Any, Any, Any], Awaitable[None]]] = {
    "doors": _maintenance,
    "parcels": _parcels,
    "audit": _audit,
    "health": _health,
    "selftest": _selftest,
    "commission": _commission,
    "reason": _reason,
    "check": _check,
}
