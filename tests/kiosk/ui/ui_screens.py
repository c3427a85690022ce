"""Helpers of the keypad tests: each screen reached the way a person reaches it, on a rig."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.widgets import DataTable
from ui_support import built, click, until

from kiosk.ui.app import KioskApp
from kiosk.ui.screens.door import OpenScreen
from kiosk.ui.screens.entry import CodeScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal, ReasonModal
from kiosk.ui.screens.notice import ErrorScreen

PIN = "471108"


async def _home(app: KioskApp, pilot: Any, admin: Any) -> None:
    pass


async def _entry(app: KioskApp, pilot: Any, admin: Any) -> None:
    await pilot.press(*"1234")
    await until(pilot, lambda: isinstance(app.screen, CodeScreen))


async def _open(app: KioskApp, pilot: Any, admin: Any) -> None:
    parcel = await admin.call("parcels.announce", size="M")
    await pilot.press(*parcel["delivery_code"], "enter")
    await until(pilot, lambda: isinstance(app.screen, OpenScreen))


async def _error(app: KioskApp, pilot: Any, admin: Any) -> None:
    await pilot.press(*"000000", "enter")
    await until(pilot, lambda: isinstance(app.screen, ErrorScreen))


async def _pin(app: KioskApp, pilot: Any, admin: Any) -> None:
    await pilot.press("f2")
    await until(pilot, lambda: isinstance(app.screen, PinModal))


async def _maintenance(app: KioskApp, pilot: Any, admin: Any) -> None:
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    await pilot.press("f2", *PIN, "enter")
    screen = await built(pilot, MaintenanceScreen)
    await until(pilot, lambda: screen.query_one("#grid", DataTable).row_count == 4)


async def _reason(app: KioskApp, pilot: Any, admin: Any) -> None:
    await _maintenance(app, pilot, admin)
    await click(pilot, "#out")
    await until(pilot, lambda: isinstance(app.screen, ReasonModal))


SCREENS: dict[str, Callable[[KioskApp, Any, Any], Awaitable[None]]] = {
    "home": _home,
    "entry": _entry,
    "open": _open,
    "error": _error,
    "pin": _pin,
    "maintenance": _maintenance,
    "reason": _reason,
}
