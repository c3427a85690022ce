"""Helpers of the keypad tests: an app aimed at a rig's socket, waiting, reading the screen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from textual.widgets import Button, Digits, Static

from kiosk.ui.app import KioskApp
from kiosk.ui.screens.door import OpenScreen

SIZE = (80, 24)


@dataclass(frozen=True)
class Display:
    """A display and what the web page gives the app on it (test_web.py measures both)."""

    pixels: tuple[int, int]  # the browser's viewport, width x height
    grid: tuple[int, int]  # the app's terminal, columns x rows
    cell: tuple[int, int]  # the least terminal cell, width x height px

    def px(self, columns: int, rows: int) -> tuple[int, int]:
        """The least size in pixels of `columns` x `rows` cells on this display."""
        return columns * self.cell[0], rows * self.cell[1]


#: The page's fit (kiosk/ui/page/app_index.html) on the three displays the kiosk is built for.
DISPLAYS = {
    "800x480": Display((800, 480), (80, 20), (10, 24)),
    "1280x800": Display((1280, 800), (71, 20), (18, 39)),
    "1920x1080": Display((1920, 1080), (80, 20), (24, 53)),
}
#: The grid of the snapshots: what a 1280x800 display shows.
KIOSK = DISPLAYS["1280x800"].grid


def make_app(socket: str, **kw: Any) -> KioskApp:
    kw.setdefault("status_s", 0.2)
    kw.setdefault("backoff_s", (0.05, 0.1, 0.2))
    return KioskApp(socket, **kw)


@contextlib.asynccontextmanager
async def at_keypad(socket: str, **kw: Any) -> AsyncIterator[tuple[KioskApp, Any]]:
    """A keypad app at SIZE, run by its Pilot, once its link to the daemon is up."""
    app = make_app(socket, **kw)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.up, what="link up")
        yield app, pilot


async def until(pilot, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until `predicate()` holds; fail with the screen's text if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out waiting for {what or predicate}: {screen_text(pilot.app)}"
            )
        await pilot.pause(0.02)


async def built(pilot, screen_type: type, what: str = "") -> Any:
    """The screen on top once it is a `screen_type` and Textual has composed and mounted it.

    A pushed screen is on top at once, but its widgets come only turns of the event
    loop later (many on a loaded machine): query it before that and it has none.
    """
    app = pilot.app
    await until(
        pilot,
        lambda: on_top(app, screen_type),
        what=what or f"{screen_type.__name__} built",
    )
    return app.screen


def on_top(app: KioskApp, screen_type: type) -> bool:
    """A `screen_type` is on top and built: composed, mounted, and its on_mount has run.

    A pushed screen is on top at once, but its widgets come turns of the event
    loop later (many on a loaded machine): a test that reads it before that finds
    nothing, so every wait for a screen waits for this.
    """
    return isinstance(app.screen, screen_type) and app.screen.is_mounted


def door_on_screen(app: KioskApp) -> bool:
    """The door screen is on top and shows its door (the plate says the locker's label).

    The app keeps one door screen and loads each door into it. The first time it
    is pushed it is on top at once, but its widgets are composed turns of the
    event loop later, and only then does it fill in the door: reading it before
    that finds the title and the buttons without the label.
    """
    screen = app.screen
    if not isinstance(screen, OpenScreen) or not screen.locker or not screen.is_mounted:
        return False
    plate = screen.query(".big-text")
    return bool(plate) and str(plate.first(Static).content) == screen.locker


def screen_text(app: KioskApp) -> str:
    """Every visible text of the current screen, joined (what a person would read)."""
    parts = []
    for widget in app.screen.query("*"):
        if not widget.display or not all(a.display for a in widget.ancestors_with_self[:-1]):
            continue
        if isinstance(widget, Button):
            parts.append(str(widget.label))
        elif isinstance(widget, Digits):
            parts.append(widget.value)
        elif isinstance(widget, Static):
            parts.append(str(widget.content))
    return " | ".join(p for p in parts if p.strip())


async def type_code(pilot, code: str, enter: bool = True) -> None:
    await pilot.press(*code)
    if enter:
        await pilot.press("enter")


async def click(pilot, selector: str) -> None:
    """Tap a widget once it is shown and laid out (a button just made visible has no place yet)."""
    app = pilot.app
    await until(
        pilot,
        lambda: any(w.display and w.region.area for w in app.screen.query(selector)),
        what=f"{selector} on screen",
    )
    await pilot.pause()
    await pilot.click(selector)
