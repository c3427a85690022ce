"""Big and touchable on the kiosk's displays: every screen at the grid the web page gives it.

Pilot runs the app at the grid the page gives each display (ui_support.DISPLAYS,
measured in Chromium by test_web.py) and turns every tap target's cells into
pixels with that display's least cell: at least 48 px each way, keys at least
80 px tall on the larger displays, the typed code at least 60 px tall there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.daemon_rig import DaemonRig
from textual import events
from textual.app import App, ComposeResult
from textual.errors import NoWidget
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Static, Tab
from ui_screens import MAINTENANCE, PIN, SCREENS
from ui_support import DISPLAYS, Display, built, click, make_app, on_top, screen_text, until

import kiosk.ui.app as kiosk_app_module
from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.commission import CommissionScreen
from kiosk.ui.screens.entry import CodeScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.widgets import BigLabel, CodeDisplay, Keypad, TapFeedback

#: The least tap target, each way (the issue's rule, WCAG 2.5.5 asks 44 px).
TARGET_PX = 48
#: The least height of a key and of the typed code's dots, per display.
KEY_PX = {"800x480": 48, "1280x800": 80, "1920x1080": 80}
CODE_PX = {"800x480": 40, "1280x800": 60, "1920x1080": 60}


def targets(app: App[Any]) -> list[tuple[str, Widget, int]]:
    """Every tap target on the screen: (name, widget, extra rows that take its tap too)."""
    found: list[tuple[str, Widget, int]] = []
    for widget in app.screen.query("*"):
        if not widget.display or not all(a.display for a in widget.ancestors_with_self[:-1]):
            continue
        if isinstance(widget, (Button, Input)) or widget.has_class("key"):
            found.append((widget.id or str(widget), widget, 0))
        elif isinstance(widget, Tab):
            found.append((widget.id or str(widget), widget, 1))  # its underline selects it too
    return found


def too_small(app: App[Any], display: Display) -> list[str]:
    """The tap targets on the screen under TARGET_PX either way, or hidden behind another."""
    found = targets(app)
    assert found, screen_text(app)
    small = []
    for target_id, widget, extra in found:
        region = widget.region
        width, height = display.px(region.width, region.height + extra)
        try:
            shown = app.screen.get_widget_at(*region.center)[0] is widget
        except NoWidget:  # off the screen
            shown = False
        if width < TARGET_PX or height < TARGET_PX or not shown:
            small.append(f"{target_id} {width}x{height} px{'' if shown else ' (hidden)'}")
    return small


def tables(app: App[Any]) -> list[DataTable[Any]]:
    """The tables shown on the screen (a technician chooses a row of each by a tap)."""
    return [
        table
        for table in app.screen.query(DataTable)
        if table.display and all(a.display for a in table.ancestors_with_self[:-1])
        if table.region.area
    ]


@pytest.mark.parametrize("name", list(DISPLAYS))
@pytest.mark.parametrize("screen", list(SCREENS))
async def test_every_tap_target_is_at_least_48_px(rig, admin, name, screen):
    display: Display = DISPLAYS[name]
    app = make_app(rig.socket)
    async with app.run_test(size=display.grid) as pilot:
        await until(pilot, lambda: app.link.up and app.last_status is not None, what="status")
        await SCREENS[screen](app, pilot, admin, rig)
        await pilot.pause()
        small = too_small(app, display)
        assert not small, f"{screen} at {name}: {small}"


@pytest.mark.parametrize("name", list(DISPLAYS))
@pytest.mark.parametrize("view", list(MAINTENANCE))
async def test_every_maintenance_row_and_action_is_at_least_48_px(rig, admin, name, view):
    """Each tab of the technician's screen, and the screens and modals it leads to: every
    button, tab and field, and every row of a table (a row is chosen by a tap on it)."""
    display: Display = DISPLAYS[name]
    app = make_app(rig.socket)
    async with app.run_test(size=display.grid) as pilot:
        await until(pilot, lambda: app.link.up and app.last_status is not None, what="status")
        await MAINTENANCE[view](app, pilot, admin, rig)
        await pilot.pause()
        small = too_small(app, display)
        shown = tables(app)
        if view in ("doors", "parcels", "audit", "health"):
            assert shown and all(table.row_count for table in shown), screen_text(app)
        for table in shown:
            for row in table.ordered_rows:
                width, height = display.px(table.region.width, row.height)
                if width < TARGET_PX or height < TARGET_PX:
                    small.append(f"#{table.id} row {row.key.value} {width}x{height} px")
        assert not small, f"{view} at {name}: {small}"


@pytest.mark.parametrize("name", list(DISPLAYS))
async def test_keys_and_the_typed_code_are_large(rig, name):
    display = DISPLAYS[name]
    app = make_app(rig.socket)
    async with app.run_test(size=display.grid) as pilot:
        await until(pilot, lambda: app.link.up, what="link up")
        await pilot.press(*"123456")
        await until(pilot, lambda: on_top(app, CodeScreen))
        await pilot.pause()
        keypad = app.screen.query_one(Keypad)
        assert keypad.region.width * 2 >= display.grid[0] * 0.8  # the keypad is most of a half
        for key in keypad.query(".key"):
            assert display.px(key.region.width, key.region.height)[1] >= KEY_PX[name], key.id
        code = app.screen.query_one(CodeDisplay)
        dots = str(code.content).splitlines()
        assert display.px(0, len(dots))[1] >= CODE_PX[name]
        assert code.content_region.width >= len(dots[0])  # six digits fit on one line


async def test_a_key_shows_the_finger_on_it_and_types_once(rig):
    app = make_app(rig.socket)
    async with app.run_test(size=DISPLAYS["800x480"].grid) as pilot:
        await until(pilot, lambda: app.link.up, what="link up")
        key = app.screen.query_one("#key-5")
        assert not key.has_class("-pressed")
        await pilot.mouse_down("#key-5")
        assert key.has_class("-pressed")  # seen while the finger is down
        await pilot.mouse_up("#key-5")
        await pilot.click("#key-5")  # a whole tap (Pilot's down and up make no click)
        await until(pilot, lambda: on_top(app, CodeScreen))
        assert app.screen.digits == "5"


async def test_a_button_shows_the_finger_on_it(rig):
    app = make_app(rig.socket)
    async with app.run_test(size=DISPLAYS["800x480"].grid) as pilot:
        await until(pilot, lambda: app.link.up, what="link up")
        button = app.screen.query_one("#language", Button)
        await pilot.mouse_down("#language")
        assert button.has_class("-pressed")
        await pilot.mouse_up("#language")
        await pilot.click("#language")
        await until(pilot, lambda: app.lang == "de")


class _LabelApp(App[None]):
    CSS_PATH = Path(kiosk_app_module.__file__).with_name("kiosk.tcss")

    def compose(self) -> ComposeResult:
        yield BigLabel("B-1")


async def test_a_locker_label_is_plain_letters():
    """'B-1' drawn in box glyphs read '8-1': the label is the letters themselves."""
    app = _LabelApp()
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        label = app.query_one(BigLabel)
        lines = [
            strip.text
            for widget in label.query("*")
            for strip in widget.render_lines(widget.region.reset_offset)
        ]
        assert any("B-1" in line for line in lines), lines
        assert not any(ch in line for line in lines for ch in "╭╮╰╯├┤─│┌└")
        assert label.region.height >= 3  # a plate three rows tall


def row_top(table: DataTable[Any], index: int) -> int:
    """Where row `index` starts inside the table, as scrolled now (cells from its top)."""
    above = sum(row.height for row in table.ordered_rows[:index])
    return table.header_height + above - round(table.scroll_y)


def drawn_on(table: DataTable[Any], y: int, colour: tuple[int, int, int]) -> bool:
    """Line `y` of the table is drawn on `colour`."""
    return any(
        seg.style is not None
        and seg.style.bgcolor is not None
        and seg.style.bgcolor.get_truecolor() == colour
        for seg in table.render_line(y)
    )


#: The chosen row (the theme's cursor) and a row under a finger (kiosk.tcss TapTable).
AMBER, WHITE = (255, 212, 0), (255, 255, 255)


async def test_a_row_shows_the_finger_on_it_and_a_tap_chooses_it(rig, admin):
    app = make_app(rig.socket)
    async with app.run_test(size=DISPLAYS["800x480"].grid) as pilot:
        await until(pilot, lambda: app.link.up and app.last_status is not None, what="status")
        await MAINTENANCE["doors"](app, pilot, admin, rig)
        screen = app.screen
        assert isinstance(screen, MaintenanceScreen)
        grid = screen.query_one("#grid", DataTable)
        assert screen.selected() == "A-1"
        y = row_top(grid, 2)
        assert drawn_on(grid, row_top(grid, 0), AMBER) and not drawn_on(grid, y, WHITE)
        await pilot.mouse_down(grid, offset=(2, y))
        await until(
            pilot,
            lambda: drawn_on(grid, y, WHITE) and drawn_on(grid, y + 1, WHITE),
            what="the whole row under the finger drawn white",
        )
        assert drawn_on(grid, row_top(grid, 0), AMBER)  # the chosen row stays as it was
        await pilot.mouse_up(grid, offset=(2, y))
        await pilot.click(grid, offset=(2, y))
        await until(pilot, lambda: screen.selected() == "B-1", what="B-1 chosen")
        await until(pilot, lambda: drawn_on(grid, y, AMBER), what="B-1 drawn as the chosen row")
        await until(pilot, lambda: not grid.has_class("-pressed"), what="the finger off")
        await pilot.mouse_down(grid, offset=(2, y))  # the chosen row, touched again
        await until(pilot, lambda: drawn_on(grid, y, WHITE), what="the chosen row touched")
        await pilot.pause(TapFeedback.FLASH_S * 2)  # every earlier tap's mark would be over
        assert grid.has_class("-pressed")  # the finger is still down: its mark stays


async def test_a_second_tap_keeps_its_mark_when_the_first_ones_ends():
    """Two quick taps: the first tap's end of mark (FLASH_S after it lifted) must not
    clear the mark of a finger that is down again."""

    class Key(TapFeedback, Static):
        pass

    class Pad(App[None]):
        def compose(self) -> ComposeResult:
            yield Key("5", id="b")

    app = Pad()
    async with app.run_test(size=(40, 10)) as pilot:
        button = app.query_one("#b", Key)
        await pilot.click("#b")  # down, up: its mark ends FLASH_S later
        await pilot.mouse_down("#b")  # the next tap, at once
        await pilot.pause(TapFeedback.FLASH_S * 2)
        assert button.has_class("-pressed")


BIG_BANK = [(f"{column}-{row}", "S") for column in "ABCD" for row in range(1, 5)]


async def test_every_locker_of_a_big_bank_is_reached_by_touch(tmp_path):
    """16 lockers at 800x480: six rows show; a drag (the page's wheel steps at the point the
    finger went down, then its lift there) scrolls without choosing, a tap then chooses."""
    display = DISPLAYS["800x480"]
    async with DaemonRig(tmp_path, backend="modbus", lockers=BIG_BANK) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        app = make_app(rig.socket)
        try:
            async with app.run_test(size=display.grid) as pilot:
                await until(pilot, lambda: app.link.up and app.last_status, what="status")
                await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
                await pilot.press("f2", *PIN, "enter")
                screen = await built(pilot, MaintenanceScreen)
                grid = screen.query_one("#grid", DataTable)
                await until(pilot, lambda: grid.row_count == len(BIG_BANK), what="16 rows")
                await pilot.pause()
                last = len(BIG_BANK) - 1
                assert row_top(grid, last) >= grid.scrollable_content_region.height  # not shown
                x, y = grid.region.x + 2, grid.region.y + row_top(grid, 1)
                app.post_message(_mouse(events.MouseDown, x, y))
                for _ in range(len(BIG_BANK)):  # more than enough steps
                    app.post_message(_mouse(events.MouseScrollDown, x, y))
                app.post_message(_mouse(events.MouseUp, x, y))
                await until(pilot, lambda: grid.scroll_y == grid.max_scroll_y > 0, what="scroll")
                await pilot.pause()
                assert screen.selected() == "A-1"  # a drag chooses nothing
                y_last = row_top(grid, last)
                assert 0 < y_last < grid.region.height - 1  # the last locker is on the screen
                await pilot.click(grid, offset=(2, y_last))
                await until(pilot, lambda: screen.selected() == "D-4", what="D-4 chosen")
        finally:
            await admin.close()


def _mouse(kind: type[events.MouseEvent], x: int, y: int) -> events.MouseEvent:
    """A mouse event as the terminal driver posts it to the app (the app makes the click)."""
    return kind(None, x, y, 0, 0, 1, False, False, False, screen_x=x, screen_y=y)


@pytest.mark.parametrize("name", list(DISPLAYS))
async def test_every_target_of_mapping_a_door_is_at_least_48_px(tmp_path, name):
    """Mapping a new bank with a channel open: the label's column and row steps, S/M/L, the
    column and row steps and the actions (the form shows only while a door is open)."""
    display: Display = DISPLAYS[name]
    async with DaemonRig(tmp_path, backend="modbus", lockers=[("A-1", "S")]) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
        await admin.close()
        app = make_app(rig.socket)
        async with app.run_test(size=display.grid) as pilot:
            await until(pilot, lambda: app.link.up and app.last_status, what="status")
            await pilot.press("f2", *PIN, "enter")
            await built(pilot, MaintenanceScreen)
            await click(pilot, "#--content-tab-tab-health")
            await click(pilot, "#commission")
            screen = await built(pilot, CommissionScreen)
            await until(pilot, lambda: screen.query_one("#map-unit", Input).value == "1")
            await click(pilot, "#map-start")
            await until(pilot, lambda: "Channel 1 is open" in screen_text(app), what="ch 1")
            await pilot.pause()
            shown = {widget.id for _, widget, _ in targets(app)}
            assert {"map-label-right", "map-size-M", "map-row-more", "map-save"} <= shown
            small = too_small(app, display)
            assert not small, f"mapping a door at {name}: {small}"
