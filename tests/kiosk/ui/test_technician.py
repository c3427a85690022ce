"""The technician's way in (PIN modal) and the maintenance screen, against a real daemon."""

from __future__ import annotations

import pytest
from support.daemon_rig import DaemonRig
from support.rig import BACKENDS
from textual.coordinate import Coordinate
from textual.widgets import DataTable, ProgressBar
from ui_support import SIZE, at_keypad, built, click, make_app, on_top, screen_text, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.entry import HomeScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import CheckModal, PinModal, ReasonModal

PIN = "471108"


async def logged_in(pilot, app) -> MaintenanceScreen:
    await until(pilot, lambda: app.link.up)
    await pilot.press("f2")
    assert isinstance(app.screen, PinModal)
    await pilot.press(*PIN, "enter")
    screen = await built(pilot, MaintenanceScreen, what="maintenance")
    await until(pilot, lambda: screen.query_one("#grid", DataTable).row_count == 4, what="grid")
    return screen


def cell(screen: MaintenanceScreen, label: str, column: str) -> str:
    return str(screen.query_one("#grid", DataTable).get_cell(label, column))


async def choose(pilot, screen: MaintenanceScreen, label: str) -> None:
    grid = screen.query_one("#grid", DataTable)
    grid.move_cursor(row=grid.get_row_index(label))
    await pilot.pause()
    assert screen.selected() == label


async def give_reason(pilot, app, reason: str) -> None:
    await until(pilot, lambda: on_top(app, ReasonModal))
    await pilot.press(*reason, "enter")
    await until(pilot, lambda: not isinstance(app.screen, ReasonModal))


async def test_star_at_home_opens_the_pin_modal_and_a_wrong_pin_counts(rig, admin):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press("*")
        assert isinstance(app.screen, PinModal)
        await pilot.press(*"0000", "enter")  # too short to be anyone's PIN: a wrong PIN
        await until(pilot, lambda: "Wrong PIN. 4 tries left." in screen_text(app))
        rows = rig.daemon.service.ctx.ledger.conn.execute(
            "SELECT actor, subject, detail FROM audit WHERE action = 'technician.login_failed'"
        ).fetchall()
        assert len(rows) == 1 and "0000" not in "".join(rows[0])  # audited, digits left out
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        await click(pilot, "#service")  # the small Service button: the same modal
        await until(pilot, lambda: on_top(app, PinModal))


@pytest.mark.backends(
    *BACKENDS, reason="a technician's door opening: the smoke flow on each backend"
)
async def test_grid_open_with_reason_service_out_and_in_then_logout(rig, admin):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    app = make_app(rig.socket)
    async with app.run_test(size=SIZE) as pilot:
        screen = await logged_in(pilot, app)
        assert "Technician t1" in screen_text(app)
        assert [cell(screen, lb, "status") for lb in ("A-1", "A-2", "B-1", "C-1")] == ["free"] * 4
        assert cell(screen, "C-1", "size") == "L"
        # The grid shows the supervisor's reading: on a bus it may still be the first poll.
        await until(pilot, lambda: cell(screen, "A-2", "door") == "shut", what="grid: A-2 shut")

        await choose(pilot, screen, "A-2")
        await click(pilot, "#open")
        await give_reason(pilot, app, "inspection")
        await until(pilot, lambda: rig.doors.pulses["A-2"] == 1, what="A-2 pulsed")
        await until(pilot, lambda: cell(screen, "A-2", "door") == "open", what="grid: open")
        rig.doors.close("A-2")
        await until(pilot, lambda: cell(screen, "A-2", "door") == "shut", what="grid: shut")

        await choose(pilot, screen, "B-1")
        await click(pilot, "#out")
        await give_reason(pilot, app, "lock sticks")
        await until(pilot, lambda: cell(screen, "B-1", "status") == "out of service")
        await click(pilot, "#in")
        await give_reason(pilot, app, "fixed")
        await until(pilot, lambda: cell(screen, "B-1", "status") == "free")

        await click(pilot, "#logout")
        await until(pilot, lambda: on_top(app, HomeScreen))
        await until(pilot, lambda: app.link.session is None)
    rows = (await admin.call("audit.tail", n=50))["rows"]
    by_t1 = {(r["action"], r["subject"]) for r in rows if r["actor"] == "technician:t1"}
    assert {s for _, s in by_t1} >= {"A-2", "B-1"}, by_t1


async def test_audit_health_selftest_and_lockout_reset(rig, admin):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    app = make_app(rig.socket)
    async with app.run_test(size=SIZE) as pilot:
        screen = await logged_in(pilot, app)
        await click(pilot, "#reset")
        await until(pilot, lambda: "Code and PIN entry are open again." in screen_text(app))

        await click(pilot, "#--content-tab-tab-audit")  # the tab's header, as a person would
        audit = screen.query_one("#audit", DataTable)
        await until(pilot, lambda: audit.row_count > 0, what="audit rows")
        actions = {str(audit.get_row_at(i)[2]) for i in range(audit.row_count)}
        assert {"technician.login", "pin.lockout_reset"} <= actions

        await click(pilot, "#--content-tab-tab-health")
        health = screen.query_one("#health", DataTable)
        await until(pilot, lambda: health.row_count == 1, what="health rows")
        board = {"gpio": ["gpio/1", "gpio", "4"], "modbus": ["rs485/1", "simulated", "4"]}
        assert [str(c) for c in health.get_row_at(0)][:3] == board[rig.backend]

        await click(pilot, "#--content-tab-tab-selftest")
        await click(pilot, "#run-selftest")
        bar = screen.query_one("#progress", ProgressBar)
        await until(pilot, lambda: bar.total == 4 and bar.progress == 4, what="selftest")
        assert "All 4 door sensors read cleanly." in screen_text(app)


async def test_maintenance_in_german(rig, admin):
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    app = make_app(rig.socket, language="de")
    async with app.run_test(size=SIZE) as pilot:
        screen = await logged_in(pilot, app)
        await until(pilot, lambda: cell(screen, "A-1", "status") == "frei")
        assert "Techniker t1" in screen_text(app)
        await pilot.press("f3")
        await until(pilot, lambda: cell(screen, "A-1", "status") == "free")


async def test_flagged_locker_checked_from_the_screen_and_parcels_listed(tmp_path, backend):
    """A daemon stopped while a courier stood at an open door: the next start keeps the
    parcel inside and flags A-1. The technician looks, records it, and the flag clears."""
    async with DaemonRig(tmp_path, backend=backend) as first:
        tech = AsyncApiClient(first.socket)
        await tech.connect()
        await tech.call("tech.set_pin", technician_id="t1", pin=PIN)
        parcel = await tech.call("parcels.announce", size="S")
        waiting = await tech.call("parcels.announce", size="M")
        await tech.close()
        kiosk = AsyncApiClient(first.socket)
        await kiosk.connect(public=True)
        opened = await kiosk.call("code.submit", code=parcel["delivery_code"])
        assert opened["locker"] == "A-1" and first.doors.is_open("A-1")
        await kiosk.close()
    # The door was never seen to shut: in doubt, the parcel is inside, flagged.
    async with DaemonRig(tmp_path, backend=backend) as rig:
        app = make_app(rig.socket)
        async with app.run_test(size=SIZE) as pilot:
            screen = await logged_in(pilot, app)
            await until(pilot, lambda: cell(screen, "A-1", "check") == "yes")
            assert cell(screen, "A-1", "status") == "occupied"

            await choose(pilot, screen, "A-2")  # not flagged: nothing to record
            await click(pilot, "#check")
            await until(pilot, lambda: "Locker A-2 is not flagged" in screen_text(app))
            assert not isinstance(app.screen, CheckModal)

            await click(pilot, "#--content-tab-tab-parcels")
            table = screen.query_one("#parcels", DataTable)
            await until(pilot, lambda: table.row_count == 2, what="parcel rows")
            first_row = [str(c) for c in table.get_row_at(0)]
            assert first_row[:4] == [parcel["parcel_id"], "S", "in locker", "A-1"]
            assert first_row[5] == "yes"  # the flagged parcel is listed first
            assert [str(c) for c in table.get_row_at(1)][:4] == [
                waiting["parcel_id"],
                "M",
                "expected",
                "",
            ]

            await click(pilot, "#--content-tab-tab-doors")
            await choose(pilot, screen, "A-1")
            await click(pilot, "#check")
            await until(pilot, lambda: on_top(app, CheckModal))
            await click(pilot, "#check-inside")  # no words yet: the modal waits for them
            await until(pilot, lambda: "First tap (or type) what you saw" in screen_text(app))
            assert isinstance(app.screen, CheckModal)
            await pilot.press(*"parcel seen")
            await click(pilot, "#check-inside")
            await until(pilot, lambda: not isinstance(app.screen, CheckModal))
            await until(pilot, lambda: cell(screen, "A-1", "check") == "", what="flag cleared")
            assert "Check recorded: the parcel is in locker A-1 (occupied)." in screen_text(app)
            await click(pilot, "#--content-tab-tab-parcels")
            await until(pilot, lambda: str(table.get_cell_at(Coordinate(0, 5))) == "")

        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        rows = (await admin.call("audit.tail", n=20))["rows"]
        await admin.close()
    checked = [r for r in rows if r["action"] == "locker.checked"]
    assert [(r["actor"], r["subject"]) for r in checked] == [("technician:t1", "A-1")]


async def test_the_sync_line_says_no_cloud_link_is_configured_on_a_bank_without_one(rig, admin):
    """No [mqtt] table: nothing to be offline from, so no "offline, last contact never"."""
    assert rig.config.mqtt is None
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    app = make_app(rig.socket)
    async with app.run_test(size=SIZE) as pilot:
        screen = await logged_in(pilot, app)
        sync = str(screen.query_one("#sync").content)
        assert sync.startswith("No cloud link configured."), sync
        assert "offline" not in sync and "never" not in sync
        assert "Events waiting to be sent: 0" in sync
