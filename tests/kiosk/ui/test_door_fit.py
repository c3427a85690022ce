"""The door screen whole at every display the kiosk is built for, whatever the bank's size:
the label, the picture with the open door, and every button inside the screen."""

from __future__ import annotations

import pytest
from fit_support import cut_off
from support.daemon_rig import DaemonRig
from textual.geometry import Region
from textual.widgets import Button
from ui_support import DISPLAYS, door_on_screen, make_app, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui import i18n
from kiosk.ui.picture import BankPicture

#: The bank of `kiosk demo` (kiosk/demo.toml): A-1..A-4, B-1..B-2, C-1..C-2.
DEMO = [
    *[(f"A-{r}", "S") for r in range(1, 5)],
    ("B-1", "M"),
    ("B-2", "M"),
    ("C-1", "L"),
    ("C-2", "L"),
]
#: A bigger bank: 4 columns of 6 rows, its one large door at the bottom right.
BIG = [(f"{c}-{r}", "S" if f"{c}-{r}" != "D-6" else "L") for c in "ABCD" for r in range(1, 7)]
BANKS = {"demo": (DEMO, "C-1"), "4x6": (BIG, "D-6")}


def _whole(app, expect: set[str]) -> None:
    """Every shown button, the label and the picture lie inside the screen, the buttons
    inside the door's padding too (the web page may show the last row in part); nothing
    is cut off."""
    screen = Region(0, 0, *app.screen.size)
    shown = {b.id: b.region for b in app.screen.query(Button) if b.display and b.parent.display}
    assert expect <= set(shown), shown
    outside = {name: r for name, r in shown.items() if not screen.contains_region(r)}
    assert not outside, f"buttons outside {screen}: {outside}"
    door = app.screen.query_one(".door")  # nor spilling over into its margin at the bottom
    actions = app.screen.query_one(".actions").region
    assert door.content_region.contains_region(actions), (actions, door.content_region)
    picture = app.screen.query_one(BankPicture)
    label = app.screen.query_one(".big-text")
    assert picture.display and picture.region.area and screen.contains_region(picture.region)
    assert screen.contains_region(label.region) and str(label.content) == app.screen.locker
    assert f"{app.screen.locker}" in str(picture.content)  # the open door, marked
    assert not cut_off(app), cut_off(app)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
@pytest.mark.parametrize("display", sorted(DISPLAYS))
@pytest.mark.parametrize("bank", sorted(BANKS))
async def test_the_door_screen_fits_every_display_with_any_bank(tmp_path, bank, display, lang):
    """A courier's door (Doesn't fit / Cancel), then the same door shut (Next parcel / Done /
    Door didn't open?): a large door on the demo's bank and at the bottom of a 4x6 bank."""
    lockers, door = BANKS[bank]
    async with DaemonRig(tmp_path, backend="modbus", lockers=lockers) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        parcel = await admin.call("parcels.announce", size="L")
        await admin.close()
        app = make_app(rig.socket, language=lang, idle_s=3600)
        async with app.run_test(size=DISPLAYS[display].grid) as pilot:
            await until(pilot, lambda: app.link.up and app.last_status is not None)
            await pilot.press(*parcel["delivery_code"], "enter")
            await until(pilot, lambda: door_on_screen(app), what="door open")
            assert app.screen.locker == door and app.screen.role == "courier"
            await pilot.pause()
            await pilot.pause()
            _whole(app, {"doesnt-fit", "cancel"})
            rig.doors.close(door)
            await until(pilot, lambda: app.screen.finished == "delivered", what="delivered")
            await pilot.pause()
            await pilot.pause()
            _whole(app, {"next", "done", "reopen"})
