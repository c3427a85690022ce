"""A picture of the bank: with an open door, the grid of compartments, that one highlighted."""

from __future__ import annotations

from fit_support import FIT_SIZE, cut_off
from ui_support import at_keypad, door_on_screen, make_app, screen_text, until

from kiosk.ui.picture import BankPicture, draw


async def test_an_open_door_shows_where_it_is_in_the_bank(rig, admin):
    parcel = await admin.call("parcels.announce", size="M")  # the rig's one M locker: B-1
    async with at_keypad(rig.socket) as (app, pilot):
        await until(pilot, lambda: app.bank_layout, what="layout fetched")
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app), what="door open")
        picture = app.screen.query_one(BankPicture)
        await until(pilot, lambda: picture.display and "◀ locker B-1" in str(picture.content))
        text = picture.content
        for label in ("A-1", "A-2", "B-1", "C-1"):
            assert f"[{label}]" in text.plain
        lit = [text.plain[s.start : s.end] for s in text.spans if "on #ffd400" in str(s.style)]
        assert lit == ["[B-1]"]  # the open one, and only it, highlighted
        assert "◀ locker B-1" in screen_text(app)


async def test_the_picture_fits_800x480(rig, admin):
    parcel = await admin.call("parcels.announce", size="S")
    app = make_app(rig.socket, language="de")
    async with app.run_test(size=FIT_SIZE) as pilot:
        await until(pilot, lambda: app.link.up and app.bank_layout)
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: door_on_screen(app))
        await pilot.pause()
        assert app.screen.query_one(BankPicture).display and not cut_off(app)


def test_a_tall_compartment_is_drawn_over_its_rows():
    cells = [
        {"label": "A-1", "column": 1, "row": 1, "rows": 1},
        {"label": "A-2", "column": 1, "row": 2, "rows": 1},
        {"label": "B-1", "column": 2, "row": 1, "rows": 2},
    ]
    text = draw(cells, "B-1", "<")
    assert text.plain.splitlines() == ["[A-1] [B-1] <", "[A-2] [   ] "]


def test_a_bank_taller_than_its_lines_is_drawn_in_bands_with_the_open_door_lit():
    cells = [
        {"label": f"{c}-{r}", "column": ord(c) - 64, "row": r} for c in "AB" for r in range(1, 7)
    ]
    text = draw(cells, "B-6", "<", lines=3)  # six rows in three lines: two rows a line
    assert text.plain.splitlines() == ["[   ] [   ] ", "[   ] [   ] ", "[   ] [B-6] <"]
    lit = [text.plain[s.start : s.end] for s in text.spans if "on #ffd400" in str(s.style)]
    assert lit == ["[B-6]"]
    assert draw(cells, "B-6", "<", lines=6).plain == draw(cells, "B-6", "<").plain
    assert len(draw(cells, "A-3", "<", lines=4).plain.splitlines()) == 3  # at most 4 lines
