"""`kiosk ui --web` in Debian's Chromium, driven by Playwright: sized to the display, used by touch.

Real parts end to end: `kiosk run` (the demo config: the simulated lock board
on a pty) and `kiosk ui --web` (textual-serve, which starts `kiosk ui` per
browser connection) as child processes, and /usr/bin/chromium (never a
browser Playwright downloads). The terminal in the page draws on a canvas, so
the text is read from what the page's websocket received, the grid from the
size the page sent, and the cell's pixels from the terminal's element. A
screenshot is kept in the test's tmp dir for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, WebSocket, async_playwright
from ui_support import DISPLAYS, on_top, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiClient, DaemonUnreachable
from kiosk.demo import write_config
from kiosk.ui import web
from kiosk.ui.app import KioskApp
from kiosk.ui.screens.entry import CodeScreen

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install chromium"
)
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[A-Za-z~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
#: The least terminal cell height the issue asks for, per display (a key of three rows
#: is then at least 80 px and 48 px tall).
#: The pressed mark's background (kiosk.tcss `-pressed`) as the terminal receives it.
AMBER = b"48;2;255;212;0"
CELL_HEIGHT_PX = {"800x480": 16, "1280x800": 27, "1920x1080": 27}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebBank:
    url: str
    socket: str


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Iterator[WebBank]:
    """`kiosk run` on the demo config (simulated board) and `kiosk ui --web` on a free port."""
    state = tmp_path_factory.mktemp("web")
    config_path, config = write_config(state)
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "kiosk", "run", "--config", str(config_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=state,
            )
        )
        sock = str(config.api.socket)
        _wait(lambda: _answers(sock), "the daemon to answer")
        port = free_port()
        children.append(
            subprocess.Popen(
                [*web_ui(config_path), "--host", "127.0.0.1", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=state,
            )
        )
        _wait(lambda: _listens(port), "the web server to listen")
        yield WebBank(f"http://127.0.0.1:{port}/", sock)
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def web_ui(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "kiosk", "ui", "--web", "--config", str(config_path)]


def _answers(sock: str) -> bool:
    try:
        with ApiClient(sock) as client:
            client.call("hello")
            return True
    except DaemonUnreachable:
        return False


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Screen:
    """The page as a person sees it: the app's text, its grid, and the terminal's cells."""

    page: Page
    received: list[bytes] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def watch(self, ws: WebSocket) -> None:
        ws.on("framereceived", lambda p: self.received.append(p if isinstance(p, bytes) else b""))
        ws.on("framesent", lambda p: self.sent.append(p if isinstance(p, str) else ""))

    def text(self) -> str:
        return ANSI.sub("", b"".join(self.received).decode("utf-8", "replace"))

    async def wait_text(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while needle not in (text := self.text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never reached the page; it got {text[-600:]!r}")
            await asyncio.sleep(0.1)
        return text

    def grid(self) -> tuple[int, int]:
        """The terminal's size as the page last told the app (columns, rows)."""
        sizes = [json.loads(m)[1] for m in self.sent if m.startswith('["resize"')]
        assert sizes, "the page never sent its size"
        return sizes[-1]["width"], sizes[-1]["height"]

    async def cells(self) -> tuple[float, float, float, float]:
        """Left, top, width and height in CSS px of one terminal cell, as drawn."""
        box = await self.page.locator(".xterm-screen").bounding_box()
        assert box is not None
        columns, rows = self.grid()
        return box["x"], box["y"], box["width"] / columns, box["height"] / rows


@contextlib.asynccontextmanager
async def chromium() -> Any:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_screen(browser: Browser, url: str, pixels: tuple[int, int]) -> Screen:
    context = await browser.new_context(
        viewport={"width": pixels[0], "height": pixels[1]}, has_touch=True
    )
    page = await context.new_page()
    screen = Screen(page)
    page.on("websocket", screen.watch)
    await page.goto(url)
    await screen.wait_text("Welcome")  # the home screen, drawn in the page
    await page.wait_for_function("document.body.classList.contains('-first-byte')")
    deadline = time.monotonic() + 30
    while not any(m.startswith('["resize"') for m in screen.sent):
        assert time.monotonic() < deadline, "the page never sent its size"
        await asyncio.sleep(0.05)
    return screen


def test_the_page_and_the_app_agree_on_the_least_grid():
    page = (web.PAGE_DIR / "app_index.html").read_text(encoding="utf-8")
    assert f"const GRID_COLS = {web.GRID[0]};" in page
    assert f"const GRID_ROWS = {web.GRID[1]};" in page


@pytest.mark.parametrize("name", list(DISPLAYS))
async def test_the_page_sizes_the_terminal_to_the_display(bank, tmp_path, name):
    display = DISPLAYS[name]
    async with chromium() as browser:
        screen = await open_screen(browser, bank.url, display.pixels)
        columns, rows = screen.grid()
        _, _, width, height = await screen.cells()
        await screen.page.screenshot(path=str(tmp_path / f"home-{name}.png"))
    assert (columns, rows) == display.grid  # what the Pilot tests run at (ui_support.DISPLAYS)
    assert columns >= web.GRID[0] and rows >= web.GRID[1]
    assert height >= CELL_HEIGHT_PX[name], f"{width:.1f}x{height:.1f} px cells"
    # At least the cells the Pilot tests turn into pixels (test_touch.py).
    assert width >= display.cell[0] and height >= display.cell[1]


SGR = re.compile(rb"\x1b\[([0-9;]*)m|\x1b\[[0-9;?<>=]*[A-Za-z~]")
BOX = re.compile(r"\[\s*([^\[\]\s][^\[\]]*?)\s*\]")


def picture_boxes(raw: bytes) -> tuple[list[str], list[str]]:
    """The compartment boxes ("[A-1]") the terminal drew on the amber highlight, and the
    others: the text is split by the SGR colours it is drawn in (a cursor move ends a run)."""
    runs: dict[bool, list[str]] = {True: [], False: []}
    amber, at = False, 0
    for match in SGR.finditer(raw):
        runs[amber].append(raw[at : match.start()].decode("utf-8", "replace"))
        runs[amber].append("\n")
        params = match.group(1)
        if params is not None:  # a colour change: the background is amber or not
            if params in (b"", b"0") or params.startswith(b"0;"):
                amber = False
            if b"48;" in params or params == b"49" or b";49" in params:
                amber = AMBER in params
        at = match.end()
    runs[amber].append(raw[at:].decode("utf-8", "replace"))
    lit, plain = ("".join(runs[flag]) for flag in (True, False))
    return BOX.findall(lit), BOX.findall(plain)


async def _key_regions(sock: str, grid: tuple[int, int]) -> dict[str, dict[str, Any]]:
    """Where each key is on the home and the code screen at `grid` (same app, same layout)."""
    app = KioskApp(sock)
    regions: dict[str, dict[str, Any]] = {}
    async with app.run_test(size=grid) as pilot:
        await until(pilot, lambda: app.link.up, what="link up")
        regions["home"] = {k.id: k.region for k in app.screen.query(".key")}
        await pilot.press("1")
        await until(pilot, lambda: on_top(app, CodeScreen))
        await pilot.pause()
        regions["entry"] = {k.id: k.region for k in app.screen.query(".key")}
    return regions


async def test_a_courier_taps_the_code_and_a_customer_types_theirs(bank, tmp_path):
    """1280x800: delivery code tapped on the keys, its door opens on the simulated board and
    the screen says which; the pickup code then typed as a USB number pad or scanner would."""
    events: list[tuple[str, dict[str, Any]]] = []
    watcher = AsyncApiClient(bank.socket, on_event=lambda e, d: events.append((e, d)))
    await watcher.connect(subscribe=True)
    try:
        parcel = await watcher.call("parcels.announce", size="S")

        def opened(parcel_id: str, reason: str) -> dict[str, Any] | None:
            for event, data in events:
                body = data.get("body") or {}
                if (event, data.get("type")) == ("ledger.event", "door.opened") and (
                    body.get("parcel_id"),
                    body.get("reason"),
                ) == (parcel_id, reason):
                    return body
            return None

        screen: Screen | None = None

        async def seen(predicate: Any, what: str) -> Any:
            deadline = time.monotonic() + 60
            while not (found := predicate()):
                if time.monotonic() > deadline:
                    shown = ""
                    if screen is not None:
                        await screen.page.screenshot(path=str(tmp_path / "never.png"))
                        (tmp_path / "sent.json").write_text(json.dumps(screen.sent))
                        shown = screen.text()[-400:]
                    raise AssertionError(f"never saw {what}: {events[-5:]}; page: {shown!r}")
                await asyncio.sleep(0.05)
            return found

        display = DISPLAYS["1280x800"]
        async with chromium() as browser:
            screen = await open_screen(browser, bank.url, display.pixels)
            regions = await _key_regions(bank.socket, screen.grid())
            left, top, width, height = await screen.cells()

            async def tap(where: str, key: str) -> None:
                region = regions[where][f"key-{key}"]
                x = left + (region.x + region.width / 2) * width
                y = top + (region.y + region.height / 2) * height
                await screen.page.touchscreen.tap(x, y)

            code = parcel["delivery_code"]
            # A finger held on the first key: the key turns amber before the finger lifts.
            cdp = await screen.page.context.new_cdp_session(screen.page)
            region = regions["home"][f"key-{code[0]}"]
            point = {
                "x": left + (region.x + region.width / 2) * width,
                "y": top + (region.y + region.height / 2) * height,
            }
            before = len(screen.received)
            await cdp.send(
                "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]}
            )
            deadline = time.monotonic() + 30
            while AMBER not in b"".join(screen.received[before:]):
                assert time.monotonic() < deadline, "a finger on a key never showed"
                await asyncio.sleep(0.05)
            await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
            await screen.wait_text("Your code")
            for digit in code[1:]:
                await tap("entry", digit)
            sent = len(screen.received)
            await tap("entry", "ok")

            door = await seen(lambda: opened(parcel["parcel_id"], "delivery"), "the door open")
            label = door["label"]
            text = await screen.wait_text(f"Locker {label} is open")
            assert code not in text  # masked on its way, too
            # The picture of the bank: exactly that compartment highlighted, every other
            # one drawn plain (what the page received since the code was sent).
            cells = (await watcher.call("layout"))["cells"]
            await screen.wait_text(f"◀ locker {label}")
            lit, plain = picture_boxes(b"".join(screen.received[sent:]))
            assert lit and set(lit) == {label}, (lit, plain)  # drawn again on each refresh
            assert {str(c["label"]) for c in cells} - {label} <= set(plain), plain
            await screen.page.screenshot(path=str(tmp_path / "door-open-1280x800.png"))

            # The simulated person shuts the door; then the pickup, typed on a keyboard.
            await seen(
                lambda: any(
                    e == "door.outcome" and d.get("parcel_id") == parcel["parcel_id"]
                    for e, d in events
                ),
                "the delivery finish",
            )
            await screen.page.keyboard.type(parcel["pickup_code"])
            await screen.page.keyboard.press("Enter")
            await seen(lambda: opened(parcel["parcel_id"], "pickup"), "the pickup door open")
            await screen.wait_text("take your parcel")
    finally:
        await watcher.close()


async def test_a_technician_drags_the_door_grid_to_its_last_locker(bank, tmp_path):
    """800x480: the demo bank's eight lockers do not all show beside the actions (rows two
    cells tall); a finger dragged up the grid scrolls it until the last one, C-2, shows."""
    display = DISPLAYS["800x480"]
    watcher = AsyncApiClient(bank.socket)
    await watcher.connect()
    try:
        await watcher.call("tech.set_pin", technician_id="t-web", pin="471108")
    finally:
        await watcher.close()
    async with chromium() as browser:
        screen = await open_screen(browser, bank.url, display.pixels)
        await screen.page.keyboard.press("F2")
        await screen.wait_text("Type your PIN")  # the modal is up: the keys go to it
        await screen.page.keyboard.type("471108")
        await screen.page.keyboard.press("Enter")
        await screen.wait_text("Log out")
        await screen.wait_text("B-2")  # the grid, as far as it shows
        await screen.page.screenshot(path=str(tmp_path / "grid-800x480.png"))
        assert "C-2" not in screen.text()  # below the table's end
        left, top, width, height = await screen.cells()
        # The grid's second row: under the top bar (3), the sync line, the tabs (2), the header.
        x, y = left + 4 * width, top + 9.5 * height
        cdp = await screen.page.context.new_cdp_session(screen.page)
        touch = "Input.dispatchTouchEvent"
        await cdp.send(touch, {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for cells in range(1, 9):  # the finger goes up eight cells, a cell at a time
            point = {"x": x, "y": y - cells * height}
            await cdp.send(touch, {"type": "touchMove", "touchPoints": [point]})
        await cdp.send(touch, {"type": "touchEnd", "touchPoints": []})
        await screen.wait_text("C-2")
        await screen.page.screenshot(path=str(tmp_path / "grid-dragged-800x480.png"))


def test_picture_boxes_reads_the_highlight_from_terminal_output():
    """The reader above, on the picture as a truecolor terminal receives it."""
    from rich.console import Console

    from kiosk.ui.picture import draw

    cells = [
        {"label": label, "column": column, "row": row}
        for column, row, label in ((1, 1, "A-1"), (1, 2, "A-2"), (2, 1, "B-1"), (2, 2, "B-2"))
    ]
    console = Console(color_system="truecolor", force_terminal=True, width=80)
    with console.capture() as out:
        console.print(draw(cells, "B-1", "◀ locker B-1"))
    lit, plain = picture_boxes(out.get().encode())
    assert lit == ["B-1"] and sorted(plain) == ["A-1", "A-2", "B-2"], (lit, plain)
