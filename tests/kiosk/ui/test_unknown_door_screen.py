"""An unreadable door, a dead board: the keypad tells the truth, the technician sees it.

Through a real daemon on the simulated Modbus board over a pty (DaemonRig):
its door inputs fail (every door read answered with a Modbus exception)
while its locks still work, or the whole board is unplugged. `kiosk status
--json` is a real process.
"""

from __future__ import annotations

import asyncio

import pytest
from support.daemon_proc import kiosk_json, write_config
from textual.widgets import DataTable, TabbedContent
from ui_support import at_keypad, built, click, on_top, screen_text, until

from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal
from kiosk.ui.screens.notice import ErrorScreen

PIN = "471108"  # 6 to 10 digits, as the daemon wants


pytestmark = pytest.mark.backends(
    "modbus", reason="a board whose door inputs fail exists only on the simulated Modbus line"
)


async def delivered(rig, admin) -> dict:
    """A parcel a courier has put in locker A-1 (through the admin connection)."""
    parcel = await admin.call("parcels.announce", size="S")
    opened = await admin.call("code.submit", code=parcel["delivery_code"])
    rig.doors.close(opened["locker"])
    for _ in range(500):
        if (await admin.call("courier.done", locker=opened["locker"]))["finished"]:
            return {**parcel, "locker": opened["locker"]}
        await asyncio.sleep(0.02)
    raise AssertionError("delivery did not finish")


async def maintenance(pilot, app) -> MaintenanceScreen:
    """Log in with PIN at the keypad; the maintenance screen once its grid is filled."""
    await pilot.press("f2")
    await until(pilot, lambda: on_top(app, PinModal))
    await pilot.press(*PIN, "enter")
    screen = await built(pilot, MaintenanceScreen, what="maintenance")
    await until(pilot, lambda: screen.query_one("#grid", DataTable).row_count == 4, what="grid")
    return screen


async def test_pickup_at_a_door_that_cannot_be_read_says_so_and_flags_the_locker(
    rig, admin, tmp_path
):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    parcel = await delivered(rig, admin)
    assert parcel["locker"] == "A-1"
    board, _ = rig.doors.board("A-1")
    board.inputs_failed = True
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["pickup_code"], "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen), timeout=15)
        text = screen_text(app)
        assert "we cannot tell whether the door opened. A technician has been called." in text
        assert "If the door is open, take out or put in your parcel and close the door." in text
        assert "The door did not open" not in text  # not told it is a jam
        assert not app.screen.query("#retry")  # typing the code again cannot help
        await click(pilot, "#language")
        await until(
            pilot, lambda: "Wir können nicht erkennen, ob die Tür offen ist" in (screen_text(app))
        )
        assert "bitte nicht gewaltsam öffnen" in screen_text(app)
        await click(pilot, "#back")
        screen = await maintenance(pilot, app)
        grid = screen.query_one("#grid", DataTable)
        await until(pilot, lambda: str(grid.get_cell("A-1", "check")) == app.texts.t("tech.yes"))
        assert str(grid.get_cell("A-1", "status")) == app.texts.t("status.OCCUPIED")  # in service

    code, status = await asyncio.to_thread(kiosk_json, write_config(tmp_path), "status")
    assert code == 0
    lockers = {lk["label"]: lk for lk in status["lockers"]}
    assert lockers["A-1"]["needs_check"] is True
    assert lockers["A-1"]["status"] == "OCCUPIED"  # still holding the parcel, not out of service
    listing = {p["parcel_id"]: p for p in (await admin.call("parcels"))["parcels"]}
    assert listing[parcel["parcel_id"]]["status"] == "DELIVERED"

    # The inputs work again: the daemon's own supervision settles the pickup as a start would.
    board.inputs_failed = False
    for _ in range(500):
        listing = {p["parcel_id"]: p for p in (await admin.call("parcels"))["parcels"]}
        if listing[parcel["parcel_id"]]["needs_check"]:
            break
        await asyncio.sleep(0.02)
    assert listing[parcel["parcel_id"]]["needs_check"] is True
    audit = (await admin.call("audit.tail", n=20))["rows"]
    assert "door_op.recovered" in [row["action"] for row in audit]


@pytest.mark.bus_silence
async def test_a_dead_board_is_told_at_once_and_shown_offline_to_the_technician(rig, admin):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    parcel = await admin.call("parcels.announce", size="S")
    rig.doors.board("A-1")[0].silent = True  # unit 1 unplugged
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: on_top(app, ErrorScreen), timeout=15)
        assert "The lock controller did not answer. Please try again later." in screen_text(app)
        assert rig.doors.pulses["A-1"] == 0
        await click(pilot, "#back")
        screen = await maintenance(pilot, app)
        screen.query_one(TabbedContent).active = "tab-health"
        health = screen.query_one("#health", DataTable)
        await until(pilot, lambda: health.row_count == 1, what="hardware tab")
        row = [str(c) for c in health.get_row_at(0)]
        assert (row[0], row[3]) == ("rs485/1", app.texts.t("tech.no"))  # board, online
    status = {lk["label"]: lk for lk in (await admin.call("status"))["lockers"]}
    assert (status["A-1"]["status"], status["A-1"]["needs_check"]) == ("AVAILABLE", False)
