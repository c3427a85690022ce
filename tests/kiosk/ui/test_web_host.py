"""`kiosk ui --web --host` on an address other than loopback warns that the screen is exposed.

Real `kiosk ui --web` subprocesses (textual-serve listening for real): on
0.0.0.0 the first stderr line is the warning; on 127.0.0.1 the server comes
up and says nothing. Waits are on the line or the open port, with a generous
deadline, never a sleep.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.demo import write_config
from kiosk.ui.web import is_loopback

DEADLINE_S = 60.0
KIOSK = [sys.executable, "-m", "kiosk"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.0.2.10", False),
        ("name-that-does-not-resolve.invalid", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


class WebScreen:
    """`kiosk ui --web` as a child; its stderr lines arrive on a queue."""

    def __init__(self, config: Path, host: str, port: int) -> None:
        self.proc = subprocess.Popen(
            [*KIOSK, "--config", str(config), "ui", "--web", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str | None:
        line = self.lines.get(timeout=DEADLINE_S)
        if line is not None:
            self.seen.append(line)
        return line

    def drain(self) -> list[str]:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.seen
            if line is not None:
                self.seen.append(line)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path, _ = write_config(tmp_path)
    return path


@pytest.fixture
def screens() -> Iterator[list[WebScreen]]:
    started: list[WebScreen] = []
    yield started
    for screen in started:
        screen.close()


def test_a_screen_on_every_interface_warns_in_one_line(config, screens) -> None:
    port = free_port()
    screen = WebScreen(config, "0.0.0.0", port)
    screens.append(screen)
    line = screen.next_line()
    assert line is not None, f"kiosk ui --web ended without a word (exit {screen.proc.wait()})"
    assert line.startswith("warning: "), line
    assert f"0.0.0.0:{port}" in line and "reachable from the network" in line, line
    assert "127.0.0.1" in line, line  # says what to do instead


def test_a_screen_on_loopback_says_nothing(config, screens) -> None:
    port = free_port()
    screen = WebScreen(config, "127.0.0.1", port)
    screens.append(screen)
    deadline = time.monotonic() + DEADLINE_S
    while True:  # until textual-serve accepts connections
        assert screen.proc.poll() is None, f"kiosk ui --web exited: {screen.drain()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "kiosk ui --web never listened"
            with contextlib.suppress(subprocess.TimeoutExpired):  # a retry step, or its exit
                screen.proc.wait(timeout=0.2)
    assert not [line for line in screen.drain() if "warning" in line]
