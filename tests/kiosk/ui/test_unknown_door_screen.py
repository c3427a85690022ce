"""A door unreadable after its pulse: the keypad tells the truth, the technician sees it.

Through a real daemon on the simulated Modbus board over a pty (DaemonRig),
whose door inputs fail (every door read answered with a Modbus exception)
while its locks still work; `kiosk status --json` is a real process.
"""

from __future__ import annotations

import asyncio

import pytest
from support.daemon_proc import kiosk_json, write_config
from ui_support import at_keypad, click, screen_text, until

from kiosk.ui.screens.notice import ErrorScreen

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


async def test_pickup_at_a_door_that_cannot_be_read_says_so_and_flags_the_locker(
    rig, admin, tmp_path
):
    parcel = await delivered(rig, admin)
    assert parcel["locker"] == "A-1"
    board, _ = rig.doors.board("A-1")
    board.inputs_failed = True
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["pickup_code"], "enter")
        await until(pilot, lambda: isinstance(app.screen, ErrorScreen), timeout=15)
        text = screen_text(app)
        assert "we cannot tell whether the door opened. A technician has been called." in text
        assert "If the door is open, take out or put in your parcel and close the door." in text
        assert "The door did not open" not in text  # not told it is a jam
        assert not app.screen.query("#retry")  # typing the code again cannot help
        await click(pilot, "#language")
        await until(pilot, lambda: "Wir können nicht erkennen, ob die Tür offen ist" in (
            screen_text(app)
        ))  # fmt: skip
        assert "bitte nicht gewaltsam öffnen" in screen_text(app)

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
