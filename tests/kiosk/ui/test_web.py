"""`kiosk ui --web` in headless Chromium: the page connects, a code is typed, the locker shows.

Real parts end to end: `kiosk run` (simulated board) and `kiosk ui --web`
(textual-serve, which starts `kiosk ui` per browser connection) as child
processes, Chromium driven over the DevTools protocol with aiohttp. The
terminal in the page draws on a canvas, so the text is read from what the
page's websocket received (recorded by a script injected before the page's
own), and a screenshot is kept for people to look at.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from kiosk.api.client import ApiClient, DaemonUnreachable
from kiosk.demo import write_config

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install chromium"
)
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[A-Za-z~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
#: Wraps WebSocket before the page's scripts run: every frame's text goes to window.__kiosk.
RECORDER = """
window.__kiosk = "";
const Native = window.WebSocket;
const decoder = new TextDecoder();
window.WebSocket = function (...args) {
  const ws = new Native(...args);
  ws.addEventListener("message", (e) => {
    if (typeof e.data !== "string") window.__kiosk += decoder.decode(e.data, {stream: true});
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cdp:
    """The smallest DevTools client: send a command, wait for its reply (events are dropped)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.next_id = ws, 0

    async def send(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads((await asyncio.wait_for(self.ws.receive(), 30)).data)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def page_text(self) -> str:
        result = await self.send(
            "Runtime.evaluate", expression="window.__kiosk", returnByValue=True
        )
        return ANSI.sub("", str(result.get("result", {}).get("value") or ""))

    async def wait_text(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = await self.page_text()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never reached the page; it got {text[-600:]!r}")
            await asyncio.sleep(0.2)


def _wait_daemon(sock: str) -> None:
    for _ in range(200):
        try:
            with ApiClient(sock) as client:
                client.call("hello")
                return
        except DaemonUnreachable:
            time.sleep(0.05)
    raise AssertionError("the daemon did not start")


async def _devtools(user_dir: Path) -> str:
    """The page target's websocket URL of a Chromium started with --remote-debugging-port=0."""
    port_file = user_dir / "DevToolsActivePort"
    for _ in range(300):
        if port_file.exists() and port_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    port = int(port_file.read_text().split()[0])
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/json/list") as reply,
    ):
        targets = await reply.json()
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


async def test_keypad_in_a_browser_opens_a_door(tmp_path):
    config_path, config = write_config(tmp_path)
    children = []
    try:
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "kiosk", "run", "--config", str(config_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp_path,
            )
        )
        sock = str(config.api.socket)
        await asyncio.to_thread(_wait_daemon, sock)
        with ApiClient(sock) as client:
            parcel = client.call("parcels.announce", size="S")
        port = free_port()
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kiosk",
                    "ui",
                    "--web",
                    "--config",
                    str(config_path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp_path,
            )
        )
        url = f"http://127.0.0.1:{port}/"
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(url) as reply:
                        if reply.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        user_dir = tmp_path / "chromium"
        children.append(
            subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--user-data-dir={user_dir}",
                    "--remote-debugging-port=0",
                    "--window-size=1000,700",
                    "about:blank",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        target = await _devtools(user_dir)
        async with aiohttp.ClientSession() as http, http.ws_connect(target, max_msg_size=0) as ws:
            cdp = Cdp(ws)
            await cdp.send("Page.enable")
            await cdp.send("Page.addScriptToEvaluateOnNewDocument", source=RECORDER)
            await cdp.send("Page.navigate", url=url)
            await cdp.wait_text("Welcome")  # the home screen, drawn in the page
            await cdp.send(
                "Runtime.evaluate",
                expression="document.querySelector('.xterm-helper-textarea').focus()",
            )
            await cdp.send("Input.insertText", text=parcel["delivery_code"])
            for kind, text in (("keyDown", "\r"), ("keyUp", "")):
                await cdp.send(
                    "Input.dispatchKeyEvent",
                    type=kind,
                    key="Enter",
                    code="Enter",
                    windowsVirtualKeyCode=13,
                    text=text,
                )
            text = await cdp.wait_text("Locker A-1 is open")
            assert parcel["delivery_code"] not in text  # masked on its way, too
            await asyncio.sleep(0.5)  # let the canvas draw the last frame
            shot = await cdp.send("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
        (tmp_path / "browser.png").write_bytes(png)
        with ApiClient(sock) as client:
            lockers = {lk["label"]: lk["status"] for lk in client.call("status")["lockers"]}
        assert lockers["A-1"] == "RESERVED"  # the browser's keys reached the daemon
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
