"""What people expect at a locker: "door didn't open?" reopens once, then "report a problem";
"I left something" after a pickup. Against a real daemon, at the kiosk's 800x480."""

from __future__ import annotations

from fit_support import FIT_SIZE, cut_off
from test_customer import delivered
from ui_support import click, door_on_screen, make_app, screen_text, until


def _shown(app, selector: str) -> bool:
    return any(w.display for w in app.screen.query(selector))


async def test_a_pickup_can_reopen_once_then_report_and_left_something(rig, admin):
    parcel = await delivered(rig, admin)
    label = parcel["locker"]
    app = make_app(rig.socket, reopen_s=600)
    async with app.run_test(size=FIT_SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await pilot.press(*parcel["pickup_code"], "enter")
        await until(pilot, lambda: door_on_screen(app) and app.screen.token)
        rig.doors.close(label)
        await until(pilot, lambda: app.screen.finished == "picked_up", what="picked up")
        assert _shown(app, "#reopen") and _shown(app, "#left") and not _shown(app, "#report")
        assert not cut_off(app), cut_off(app)
        await click(pilot, "#left")  # "I left something": the same door, open again
        await until(pilot, lambda: rig.doors.is_open(label), what="door open again")
        await until(pilot, lambda: app.screen.finished is None, what="door screen again")
        rig.doors.close(label)
        await until(pilot, lambda: app.screen.finished == "closed", what="shut again")
        assert _shown(app, "#reopen") and not _shown(app, "#left")
        await click(pilot, "#reopen")  # "door didn't open?": once more
        await until(pilot, lambda: rig.doors.is_open(label), what="door open a third time")
        rig.doors.close(label)
        await until(pilot, lambda: app.screen.finished == "closed" and _shown(app, "#report"))
        assert not _shown(app, "#reopen")  # once only; now: report a problem
        assert not cut_off(app), cut_off(app)
        await click(pilot, "#report")
        await until(pilot, lambda: "a technician has been called" in screen_text(app))
    status = {lk["label"]: lk["status"] for lk in (await admin.call("status"))["lockers"]}
    assert status[label] == "OUT_OF_SERVICE"


async def test_a_courier_report_opens_another_locker_for_the_parcel(rig, admin):
    parcel = await admin.call("parcels.announce", size="S")
    app = make_app(rig.socket)
    async with app.run_test(size=FIT_SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app) and app.screen.token)
        first = app.screen.locker
        rig.doors.close(first)
        await until(pilot, lambda: app.screen.finished == "delivered")
        await click(pilot, "#reopen")
        await until(pilot, lambda: rig.doors.is_open(first))
        rig.doors.close(first)
        await until(pilot, lambda: _shown(app, "#report"), what="report offered")
        await click(pilot, "#report")
        await until(pilot, lambda: app.screen.locker != first, what="another locker")
        assert rig.doors.is_open(app.screen.locker)
        assert f"Locker {app.screen.locker} is open: place the parcel" in screen_text(app)
