"""Snapshots of each keypad screen, in English and German (pytest-textual-snapshot).

They are taken at the grid the web page gives a 1280x800 display (ui_support.KIOSK,
measured by test_web.py), the home and code screens also at 800x480 and 1920x1080.

`snap_compare` runs the app with its own event loop (`App.run`), so the real
daemon runs on another loop in a thread here; the app talks to it over its
socket exactly as `kiosk ui` does. Update after a deliberate change with
`pytest tests/kiosk/ui/test_snapshots.py --snapshot-update`, and look at the
report before committing.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.daemon_rig import DaemonRig
from textual.widgets import DataTable, Input, ProgressBar
from ui_support import DISPLAYS, KIOSK, built, click, door_on_screen, make_app, on_top, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import CheckModal, PinModal, ReasonModal
from kiosk.ui.screens.notice import ErrorScreen, LockoutScreen, UnreachableScreen

LANGS = ["en", "de"]
WRONG = "000000"


class ThreadedRig:
    """A DaemonRig on its own event loop in a thread, with a blocking admin `call`."""

    def __init__(self, state: Path, **config_kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.rig = DaemonRig(state, **config_kw)
        self.admin = AsyncApiClient(self.rig.socket)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=20)

    def __enter__(self) -> ThreadedRig:
        self.thread.start()
        self._run(self.rig.__aenter__())
        self._run(self.admin.connect())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.admin.close())
        self._run(self.rig.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    @property
    def socket(self) -> str:
        return self.rig.socket

    def call(self, name: str, **args: Any) -> dict[str, Any]:
        return self._run(self.admin.call(name, **args))

    def deliver(self, size: str) -> dict[str, Any]:
        """A parcel put in by a courier (admin connection), door shut and recorded."""
        parcel = self.call("parcels.announce", size=size)
        opened = self.call("code.submit", code=parcel["delivery_code"])
        self.loop.call_soon_threadsafe(self.rig.doors.close, opened["locker"])
        for _ in range(250):
            if self.call("courier.done", locker=opened["locker"])["finished"]:
                return parcel
            threading.Event().wait(0.02)
        raise AssertionError("delivery did not finish")


@pytest.fixture
def bank(tmp_path) -> Iterator[ThreadedRig]:
    with ThreadedRig(tmp_path) as rig:
        yield rig


async def settled(pilot) -> None:
    """Connected, the first `status` in (no offline badge: the rig has no cloud link)."""
    app = pilot.app
    await until(pilot, lambda: app.link.up and app.last_status is not None, what="status")
    await pilot.pause(0.1)


def snap(snap_compare, bank: ThreadedRig, lang: str, run_before) -> bool:  # type: ignore[no-untyped-def]
    """The keypad app on `bank` in `lang`, at KIOSK, compared after `run_before`."""
    return snap_compare(
        make_app(bank.socket, language=lang), terminal_size=KIOSK, run_before=run_before
    )


async def door_opened(pilot, code: str) -> None:
    """Settled, `code` typed and entered, the door screen up."""
    await settled(pilot)
    await pilot.press(*code, "enter")
    await until(pilot, lambda: door_on_screen(pilot.app))


@pytest.mark.parametrize("lang", LANGS)
def test_home(snap_compare, bank, lang):
    assert snap(snap_compare, bank, lang, settled)


@pytest.mark.parametrize("name", ["800x480", "1920x1080"])
def test_home_and_code_on_other_displays(snap_compare, bank, name):
    async def typed(pilot):
        await settled(pilot)
        await pilot.press("1", "2", "3", "4")

    app = make_app(bank.socket, language="en")
    assert snap_compare(app, terminal_size=DISPLAYS[name].grid, run_before=typed)


@pytest.mark.parametrize("lang", LANGS)
def test_code_entry(snap_compare, bank, lang):
    async def typed(pilot):
        await settled(pilot)
        await pilot.press("1", "2", "3", "4")

    assert snap(snap_compare, bank, lang, typed)


@pytest.mark.parametrize("lang", LANGS)
def test_courier_result(snap_compare, bank, lang):
    parcel = bank.call("parcels.announce", size="M")

    async def opened(pilot):
        await door_opened(pilot, parcel["delivery_code"])

    assert snap(snap_compare, bank, lang, opened)


@pytest.mark.parametrize("lang", LANGS)
def test_customer_result(snap_compare, bank, lang):
    parcel = bank.deliver("S")

    async def opened(pilot):
        await door_opened(pilot, parcel["pickup_code"])

    assert snap(snap_compare, bank, lang, opened)


@pytest.mark.parametrize("lang", LANGS)
def test_error(snap_compare, bank, lang):
    async def refused(pilot):
        await settled(pilot)
        await pilot.press(*WRONG, "enter")
        await until(pilot, lambda: on_top(pilot.app, ErrorScreen))

    assert snap(snap_compare, bank, lang, refused)


@pytest.mark.parametrize("lang", LANGS)
def test_lockout(snap_compare, tmp_path, lang):
    async def locked(pilot):
        await settled(pilot)
        await pilot.press(*WRONG, "enter")
        await until(pilot, lambda: on_top(pilot.app, LockoutScreen))

    with ThreadedRig(tmp_path, policy={"max_failures": 1, "backoff_first_s": 90}) as rig:
        # A stopped clock: the countdown shows the daemon's 90 s, not whatever is left.
        app = make_app(rig.socket, language=lang, clock=lambda: 1000.0)
        assert snap_compare(app, terminal_size=KIOSK, run_before=locked)


@pytest.mark.parametrize("lang", LANGS)
def test_unreachable(snap_compare, tmp_path, lang):
    async def down(pilot):
        await until(pilot, lambda: on_top(pilot.app, UnreachableScreen))

    app = make_app(str(tmp_path / "nobody.sock"), language=lang)
    assert snap_compare(app, terminal_size=KIOSK, run_before=down)


@pytest.mark.parametrize("lang", LANGS)
def test_pin_modal(snap_compare, bank, lang):
    async def asked(pilot):
        await settled(pilot)
        await pilot.press("f2")
        await until(pilot, lambda: on_top(pilot.app, PinModal))
        await pilot.press("4", "7")

    assert snap(snap_compare, bank, lang, asked)


@pytest.mark.parametrize("lang", LANGS)
def test_maintenance_grid(snap_compare, bank, lang):
    bank.call("tech.set_pin", technician_id="t1", pin="471108")
    bank.deliver("L")  # one occupied locker in the grid

    async def grid(pilot):
        await settled(pilot)
        await pilot.press("f2", *"471108", "enter")
        screen = await built(pilot, MaintenanceScreen)
        table = screen.query_one("#grid", DataTable)
        await until(pilot, lambda: table.row_count == 4)
        await until(pilot, lambda: doors_read(screen), what="every door's first reading")
        await until(pilot, lambda: header_in_line(pilot), what="the header over its columns")
        await pilot.pause(0.2)

    assert snap(snap_compare, bank, lang, grid)


@pytest.mark.parametrize("lang", LANGS)
def test_check_modal(snap_compare, bank, lang):
    bank.call("tech.set_pin", technician_id="t1", pin="471108")

    async def asked(pilot):
        await _maintenance(pilot)  # the grid shows behind the modal
        pilot.app.push_screen(CheckModal("C-1"))  # what "Record check" asks of a flagged one
        await until(pilot, lambda: on_top(pilot.app, CheckModal))
        await until(pilot, lambda: pilot.app.screen.query(Input))  # composed
        pilot.app.screen.query_one(Input).cursor_blink = False  # a blink is not a change
        await pilot.press(*"parcel seen")
        await pilot.pause(0.2)

    assert snap(snap_compare, bank, lang, asked)


@pytest.mark.parametrize("lang", LANGS)
def test_doesnt_fit_asks_to_close_first(snap_compare, bank, lang):
    parcel = bank.call("parcels.announce", size="M")

    async def asked(pilot):
        await door_opened(pilot, parcel["delivery_code"])
        await click(pilot, "#doesnt-fit")
        await until(pilot, lambda: pilot.app.screen.choice == "doesnt_fit")
        await pilot.pause(0.2)

    assert snap(snap_compare, bank, lang, asked)


@pytest.mark.parametrize("lang", LANGS)
def test_left_open_prompt(snap_compare, bank, lang):
    parcel = bank.call("parcels.announce", size="S")

    async def prompted(pilot):
        await door_opened(pilot, parcel["delivery_code"])
        alert = {"label": "A-1", "kind": "left_open", "open_s": 120}
        bank.loop.call_soon_threadsafe(bank.rig.daemon.hub.publish, "door.alert", alert)
        await until(pilot, lambda: "A-1" in str(pilot.app.screen.query_one("#prompt").content))
        await pilot.pause(0.2)

    assert snap(snap_compare, bank, lang, prompted)


def cell_starts(svg: str, line: int) -> list[str]:
    """Where the cells of screen line `line` start in a screenshot (x of each drawn text)."""
    return re.findall(rf'<text[^>]* x="([\d.]+)"[^>]*url\(#terminal-[\d-]*line-{line}\)', svg)


def header_in_line(pilot) -> bool:  # type: ignore[no-untyped-def]
    """The grid's header as drawn starts its columns where the rows' cells start (a
    header drawn before its columns widened and never redrawn would not)."""
    table = pilot.app.screen.query_one("#grid", DataTable)
    svg = pilot.app.export_screenshot()
    top = table.region.y
    return cell_starts(svg, top)[:4] == cell_starts(svg, top + 1)[:4]


def doors_read(screen: MaintenanceScreen) -> bool:
    """Every door of the grid shows the supervisor's reading, shut: on a loaded machine
    the grid can come before the first poll, and a snapshot then shows doors unread."""
    table = screen.query_one("#grid", DataTable)
    shut = screen.t("door.shut")  # in the screen's language
    return table.row_count == 4 and all(
        str(table.get_cell(label, "door")) == shut for label in ("A-1", "A-2", "B-1", "C-1")
    )


async def _maintenance(pilot) -> MaintenanceScreen:
    await settled(pilot)
    await pilot.press("f2", *"471108", "enter")
    screen = await built(pilot, MaintenanceScreen)
    await until(pilot, lambda: doors_read(screen), what="every door's first reading")
    await until(pilot, lambda: header_in_line(pilot), what="the header over its columns")
    return screen


@pytest.mark.parametrize("lang", LANGS)
def test_reason_modal(snap_compare, bank, lang):
    bank.call("tech.set_pin", technician_id="t1", pin="471108")

    async def asked(pilot):
        await _maintenance(pilot)
        await click(pilot, "#out")
        await until(pilot, lambda: on_top(pilot.app, ReasonModal))
        await until(pilot, lambda: pilot.app.screen.query(Input))  # composed
        pilot.app.screen.query_one(Input).cursor_blink = False  # a blink is not a change
        await pilot.press(*"lock sticks")
        await pilot.pause(0.2)

    assert snap(snap_compare, bank, lang, asked)


@pytest.mark.parametrize("tab", ["parcels", "health", "selftest"])
@pytest.mark.parametrize("lang", LANGS)
def test_maintenance_tabs(snap_compare, bank, lang, tab):
    bank.call("tech.set_pin", technician_id="t1", pin="471108")
    for parcel_id, size in (("P-1001", "S"), ("P-1002", "L")):  # expected: no dates to move
        bank.call("parcels.announce", size=size, parcel_id=parcel_id)

    async def shown(pilot):
        screen = await _maintenance(pilot)
        await click(pilot, f"#--content-tab-tab-{tab}")
        if tab == "parcels":
            table = screen.query_one("#parcels", DataTable)
            await until(pilot, lambda: table.row_count == 2)
        elif tab == "health":
            table = screen.query_one("#health", DataTable)
            await until(pilot, lambda: table.row_count == 1)
        else:
            await click(pilot, "#run-selftest")
            bar = screen.query_one("#progress", ProgressBar)
            await until(pilot, lambda: bar.total == 4 and bar.progress == 4)
            await until(pilot, lambda: "4" in str(screen.query_one("#selftest-result").content))
        await pilot.pause(0.2)

    assert snap(snap_compare, bank, lang, shown)
