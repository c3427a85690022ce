"""A technician's work by taps alone, at each display the kiosk is built for: no key pressed.

From the Service button and the PIN on the on-screen keypad to a door opened with a
reason, a locker out of service and back, a flagged locker checked and a new bank's
doors mapped; every step a `pilot.click` on an on-screen target, never a key, and
each ends with what the daemon recorded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.daemon_rig import DaemonRig
from textual.widgets import Button, DataTable, Input, Static
from ui_support import DISPLAYS, built, make_app, on_top, screen_text, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.commission import CommissionScreen
from kiosk.ui.screens.entry import HomeScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import CheckModal, PinModal, ReasonModal

PIN = "471108"


async def tap(pilot, selector: str) -> None:
    """A finger on a target once it is shown and laid out, and ready for another tap
    (a Button ignores a tap while it still shows the last one, `-active`)."""
    app = pilot.app

    def ready() -> bool:
        return any(
            w.display and w.region.area and not w.has_class("-active")
            for w in app.screen.query(selector)
        )

    await until(pilot, ready, what=f"{selector} ready for a tap")
    await pilot.pause()
    assert await pilot.click(selector), f"{selector}: the tap landed on another widget"


async def tapped_in(pilot, lockers: int) -> MaintenanceScreen:
    """Service, then the PIN on the modal's keypad and its OK key: the maintenance screen."""
    app = pilot.app
    await until(pilot, lambda: app.link.up and app.last_status is not None, what="status")
    await tap(pilot, "#service")
    await built(pilot, PinModal)
    for digit in PIN:
        await tap(pilot, f"#key-{digit}")
    await until(pilot, lambda: app.screen.digits == PIN, what="PIN typed by taps")
    await tap(pilot, "#key-ok")
    screen = await built(pilot, MaintenanceScreen)
    grid = screen.query_one("#grid", DataTable)
    await until(pilot, lambda: grid.row_count == lockers, what="the door grid")
    return screen


async def choose(pilot, screen: MaintenanceScreen, label: str) -> None:
    """A tap on the locker's row of the door grid."""
    grid = screen.query_one("#grid", DataTable)
    index = grid.get_row_index(label)
    y = grid.header_height + sum(row.height for row in grid.ordered_rows[:index])
    await pilot.pause()
    await pilot.click(grid, offset=(2, y - round(grid.scroll_y)))
    await until(pilot, lambda: screen.selected() == label, what=f"{label} chosen")


async def give(pilot, *phrases: str, ok: str = "#reason-ok") -> None:
    """Tap the usual words of the reason (or check) modal, then its answer."""
    app = pilot.app
    modal = app.screen
    for phrase in phrases:
        await tap(pilot, f"#phrase-{phrase}")
    await tap(pilot, ok)
    await until(pilot, lambda: app.screen is not modal, what="the modal answered")


def cell(screen: MaintenanceScreen, label: str, column: str) -> str:
    return str(screen.query_one("#grid", DataTable).get_cell(label, column))


def reasons(rows: list[dict[str, Any]], action: str) -> list[tuple[str, str]]:
    """(locker, reason) of each audit row of `action`, oldest first."""
    return [
        (row["subject"], json.loads(row["detail"] or "{}").get("reason", ""))
        for row in rows
        if row["action"] == action
    ]


@pytest.mark.parametrize("name", list(DISPLAYS))
async def test_a_door_opened_and_a_locker_out_and_back_by_taps_alone(rig, admin, name):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    app = make_app(rig.socket)
    async with app.run_test(size=DISPLAYS[name].grid) as pilot:
        screen = await tapped_in(pilot, 4)
        await until(pilot, lambda: cell(screen, "A-2", "door") == "shut", what="A-2 shut")

        await choose(pilot, screen, "A-2")
        await tap(pilot, "#open")
        await built(pilot, ReasonModal)
        await give(pilot, "inspection", "cleaning")
        await until(pilot, lambda: rig.doors.pulses["A-2"] == 1, what="A-2 pulsed")
        rig.doors.close("A-2")

        await choose(pilot, screen, "B-1")
        await tap(pilot, "#out")
        await built(pilot, ReasonModal)
        await tap(pilot, "#reason-ok")  # nothing chosen yet: it says so, and waits
        await until(pilot, lambda: "First tap a reason" in screen_text(app), what="the hint")
        await give(pilot, "lock_sticks")
        await until(pilot, lambda: cell(screen, "B-1", "status") == "out of service")
        await tap(pilot, "#in")
        await built(pilot, ReasonModal)
        await give(pilot, "misc", "fixed", "misc")  # a second tap takes "Other" back
        await until(pilot, lambda: cell(screen, "B-1", "status") == "free")

        await tap(pilot, "#logout")
        await until(pilot, lambda: on_top(app, HomeScreen), what="home")
    rows = (await admin.call("audit.tail", n=50))["rows"]
    assert reasons(rows, "technician.open") == [("A-2", "Inspection, Cleaning")]
    assert reasons(rows, "locker.out_of_service") == [("B-1", "Lock sticks")]
    assert reasons(rows, "locker.in_service") == [("B-1", "Fixed")]


@pytest.mark.parametrize("name", list(DISPLAYS))
async def test_a_flagged_locker_checked_by_taps_alone(tmp_path, backend, name):
    """The daemon stopped while a courier stood at an open door: A-1 is flagged at the next
    start. The technician looks inside and records it with taps."""
    async with DaemonRig(tmp_path, backend=backend) as first:
        tech = AsyncApiClient(first.socket)
        await tech.connect()
        await tech.call("tech.set_pin", technician_id="t1", pin=PIN)
        parcel = await tech.call("parcels.announce", size="S")
        opened = await tech.call("code.submit", code=parcel["delivery_code"])
        assert opened["locker"] == "A-1"
        await tech.close()
    async with DaemonRig(tmp_path, backend=backend) as rig:
        app = make_app(rig.socket)
        async with app.run_test(size=DISPLAYS[name].grid) as pilot:
            screen = await tapped_in(pilot, 4)
            await until(pilot, lambda: cell(screen, "A-1", "check") == "yes", what="flagged")
            await choose(pilot, screen, "A-1")
            await tap(pilot, "#check")
            await built(pilot, CheckModal)
            await tap(pilot, "#check-inside")  # no words yet: the modal waits for them
            await until(pilot, lambda: "First tap (or type)" in screen_text(app), what="hint")
            await give(pilot, "parcel_seen", "label_readable", ok="#check-inside")
            await until(pilot, lambda: cell(screen, "A-1", "check") == "", what="flag cleared")
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        rows = (await admin.call("audit.tail", n=30))["rows"]
        await admin.close()
    assert reasons(rows, "locker.checked") == [("A-1", "Parcel seen, Label readable")]


@pytest.mark.parametrize("name", list(DISPLAYS))
async def test_a_two_door_bank_mapped_by_taps_alone(tmp_path, name):
    """Board 1 has four channels, lockers A-1 and A-2 on 0 and 1: the screen opens channels
    2 and 3, proposes the labels after A-2, and a tap steps the column and the row."""
    lockers = [("A-1", "S"), ("A-2", "S")]
    async with DaemonRig(tmp_path, backend="modbus", lockers=lockers) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
        await admin.close()
        app = make_app(rig.socket)
        async with app.run_test(size=DISPLAYS[name].grid) as pilot:
            await tapped_in(pilot, 2)
            await tap(pilot, "#--content-tab-tab-health")
            await tap(pilot, "#commission")
            screen = await built(pilot, CommissionScreen)

            def field(key: str) -> str:
                return screen.query_one(f"#map-{key}", Input).value

            await until(pilot, lambda: (field("bus"), field("unit")) == ("rs485", "1"))
            await tap(pilot, "#map-unit-more")  # the unit steps both ways
            await until(pilot, lambda: field("unit") == "2")
            await tap(pilot, "#map-unit-less")
            await until(pilot, lambda: field("unit") == "1")
            await tap(pilot, "#map-start")
            await until(pilot, lambda: "Channel 2 is open" in screen_text(app), what="ch 2")
            assert field("label") == "A-3"  # the bank's naming, continued
            await tap(pilot, "#map-size-M")
            assert screen.query_one("#map-size-M", Button).has_class("-current")
            await tap(pilot, "#map-save")
            await until(pilot, lambda: "Channel 3 is open" in screen_text(app), what="ch 3")
            await until(pilot, lambda: field("label") == "A-4", what="the next label")
            assert field("size") == "M"  # the last door's size, proposed again
            await tap(pilot, "#map-label-right")  # the next column starts at its row 1
            await until(pilot, lambda: field("label") == "B-1")
            await tap(pilot, "#map-label-down")
            await until(pilot, lambda: field("label") == "B-2")
            await tap(pilot, "#map-size-L")
            await tap(pilot, "#map-row-more")
            await tap(pilot, "#map-row-more")
            await until(pilot, lambda: field("row") == "2")
            await tap(pilot, "#map-save")  # the last channel: the entries follow
            result = screen.query_one("#map-result", Static)
            await until(pilot, lambda: "[[locker]]" in str(result.content), what="entries")
            toml = str(result.content)
        audit = rig.daemon.service.ctx.ledger.conn.execute(
            "SELECT actor, subject FROM audit WHERE action = 'hardware.map_open' ORDER BY id"
        ).fetchall()
    entries = toml.split("[[locker]]")[1:]
    assert len(entries) == 2, toml
    first, second = entries
    assert 'label = "A-3"' in first and 'size = "M"' in first and "channel = 2" in first
    assert 'label = "B-2"' in second and 'size = "L"' in second and "channel = 3" in second
    assert "row = 2" in second and "column" not in toml
    assert [tuple(r) for r in audit] == [("technician:t1", f"rs485/1/{c}") for c in (2, 3)]
