"""`kiosk demo` as a new user runs it: headless, and typed at in a real terminal (tmux)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.api.client import ApiClient
from kiosk.domain.codes import code_digest, parse_code_key

TIMEOUT_S = 60  # a whole headless run; it takes a few seconds
STEP_S = 20  # one step of the interactive demo
CODES_LINE = re.compile(r"(\S+) delivery=(\d{6}) pickup=(\d{6})")
# Where a 6-digit run in the ledger is innocent: the microseconds of a timestamp,
# or inside a hex hash or uuid.
_INNOCENT = re.compile(rb"\.\d{6}Z|[0-9a-f-]{32,}")


def kiosk(*argv: str) -> list[str]:
    return [sys.executable, "-m", "kiosk", *argv]


def read_codes(state: Path) -> list[tuple[str, str, str]]:
    """(parcel_id, delivery code, pickup code) per line of demo-codes.txt, checking the format."""
    text = (state / "demo-codes.txt").read_text(encoding="ascii")
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 3
    out = []
    for line in lines:
        match = CODES_LINE.fullmatch(line)
        assert match, f"bad demo-codes.txt line: {line!r}"
        out.append((match[1], match[2], match[3]))
    return out


def plaintext_hits(data: bytes, code: str) -> list[int]:
    """Offsets where `code` appears in `data` outside a timestamp's microseconds or a hash."""
    innocent = [m.span() for m in _INNOCENT.finditer(data)]
    hits = []
    for match in re.finditer(re.escape(code.encode()), data):
        if not any(lo <= match.start() and match.end() <= hi for lo, hi in innocent):
            hits.append(match.start())
    return hits


# --- headless -------------------------------------------------------------------


@pytest.fixture(scope="module")
def headless(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    state = tmp_path_factory.mktemp("headless")
    proc = subprocess.run(
        kiosk("demo", "--headless", "--state-dir", str(state)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=state,
    )
    return state, proc


def test_headless_exits_0(headless):
    _, proc = headless
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_headless_walks_delivery_then_pickup(headless):
    state, proc = headless
    (parcel, delivery, pickup), *_ = read_codes(state)
    out = proc.stdout
    typed_delivery = out.index(f"courier types delivery code {delivery}")
    delivered = re.search(rf"locker (\S+): OCCUPIED, parcel {parcel}: DELIVERED", out)
    assert delivered, out
    label = delivered[1]
    assert re.fullmatch(r"[A-Z]-\d+", label)
    assert re.search(rf"locker {label} unlocked, door open; locker {label}: RESERVED", out)
    typed_pickup = out.index(f"customer types pickup code {pickup}")
    picked = out.index(f"locker {label}: AVAILABLE, parcel {parcel}: PICKED_UP")
    assert typed_delivery < delivered.start() < typed_pickup < picked
    assert "chain verified" in out


def test_headless_writes_demo_codes(headless):
    state, _ = headless
    rows = read_codes(state)
    assert len({pid for pid, _, _ in rows}) == 3
    codes = [c for _, d, p in rows for c in (d, p)]
    assert len(set(codes)) == 6


def test_headless_ledger_verifies(headless):
    state, _ = headless
    ledger = state / "ledger.db"
    assert ledger.is_file()
    proc = subprocess.run(
        kiosk("audit", "verify", "--db", str(ledger)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=state,
    )
    assert proc.returncode == 0, proc.stderr
    assert "audit chain verified" in proc.stdout


def test_headless_ledger_holds_digests_never_codes(headless):
    state, _ = headless
    rows = read_codes(state)
    files = [state / "ledger.db", state / "ledger.db-wal"]
    data = b"".join(f.read_bytes() for f in files if f.exists())
    for _, delivery, pickup in rows:
        for code in (delivery, pickup):
            assert plaintext_hits(data, code) == [], f"code {code} is in the ledger in clear"
    # What is there instead: the digests of the codes still active (the first
    # parcel's were dropped when it was picked up).
    key = parse_code_key((state / "site-code.key").read_text(encoding="ascii"))
    conn = sqlite3.connect(state / "ledger.db")
    try:
        stored = {
            (d, p, r) for d, p, r in conn.execute("SELECT digest, parcel_id, role FROM codes")
        }
    finally:
        conn.close()
    expected = {
        (code_digest(key, code), pid, role)
        for pid, delivery, pickup in rows[1:]
        for code, role in ((delivery, "delivery"), (pickup, "pickup"))
    }
    assert stored == expected


# --- interactive: the keypad screen in a real terminal (tmux) -------------------------

TMUX = shutil.which("tmux")


class Tmux:
    """One tmux server of our own (-L), an 80x24 window running `kiosk demo`."""

    def __init__(self, state: Path) -> None:
        self.name = f"kiosk-demo-{os.getpid()}"
        self.base = [TMUX or "tmux", "-L", self.name]
        command = shlex.join(kiosk("demo", "--state-dir", str(state)))
        subprocess.run(
            [
                *self.base,
                "new-session",
                "-d",
                "-s",
                "demo",
                "-x",
                "80",
                "-y",
                "24",
                f"cd {shlex.quote(str(state))} && {command}",
            ],
            check=True,
            timeout=STEP_S,
        )

    def screen(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "demo"],
            capture_output=True,
            text=True,
            timeout=STEP_S,
        )
        return done.stdout

    def expect(self, text: str, timeout_s: float = STEP_S) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never showed; the screen:\n{screen}")
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "demo", *keys], check=True, timeout=STEP_S)

    def alive(self) -> bool:
        done = subprocess.run([*self.base, "has-session", "-t", "demo"], capture_output=True)
        return done.returncode == 0

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=STEP_S)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Tmux]:
    if TMUX is None:
        pytest.skip("tmux is not installed (apt package tmux): no real terminal to test in")
    session = Tmux(tmp_path)
    try:
        yield session
    finally:
        session.stop()


def test_demo_in_a_real_terminal_opens_a_door_for_a_typed_code(terminal, tmp_path):
    home = terminal.expect("Welcome")  # the keypad screen, with the sample codes on it
    rows = read_codes(tmp_path)  # written before the screen opened
    _, delivery, pickup = rows[0]
    assert f"delivery {delivery}" in home  # the demo shows its sample codes at home

    terminal.keys(delivery, "Enter")
    screen = terminal.expect("is open: place the parcel and close the door.")
    label = re.search(r"Locker (\S+) is open", screen)[1]
    assert re.fullmatch(r"[A-Z]-\d+", label)
    # The simulated courier shuts the door after 4 s: the parcel is in.
    terminal.expect(f"The parcel is stored in locker {label}.", timeout_s=15)
    terminal.keys(*pickup, "Enter")
    terminal.expect(f"Locker {label} is open: take your parcel and close the door.")

    terminal.keys("C-q")  # quit the screen: the demo stops its daemon and exits
    deadline = time.monotonic() + STEP_S
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not terminal.alive()
    log = (tmp_path / "daemon.log").read_text()
    assert "kiosk daemon ready" in log and "kiosk daemon stopped" in log
    assert "Traceback" not in log
    assert not (tmp_path / "kiosk.sock").exists()


def test_demo_without_a_terminal_prints_the_codes_and_stops(tmp_path):
    proc = subprocess.run(
        kiosk("demo", "--state-dir", str(tmp_path)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Sample parcels" in proc.stdout and "No terminal" in proc.stdout
    assert len(read_codes(tmp_path)) == 3
    assert "kiosk daemon stopped" in (tmp_path / "daemon.log").read_text()


# --- every role, and the browser -----------------------------------------------------

PIN_LINE = re.compile(r"Technician PIN: (\d{6,10}) \(technician (\S+);")
URL_LINE = re.compile(r"The keypad screen: (http://localhost:\d+/)")


def test_headless_prints_a_technician_pin(headless):
    _, proc = headless
    assert PIN_LINE.search(proc.stdout), proc.stdout


def test_readme_says_the_demo_prints_a_technician_pin():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "technician PIN" in readme and "kiosk demo --web" in readme


def test_demo_web_serves_the_screen_and_its_pin_opens_maintenance(tmp_path):
    """`kiosk demo --web`: its URL serves the keypad page; its PIN logs a technician in."""
    proc = subprocess.Popen(
        kiosk("demo", "--web", "--state-dir", str(tmp_path)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        seen = ""
        while not URL_LINE.search(seen):
            line = proc.stdout.readline()  # the demo prints the URL before serving
            assert line, f"the demo ended without a URL: {seen}{proc.stderr.read()}"
            seen += line
        url = URL_LINE.search(seen)[1]
        pin, technician = PIN_LINE.search(seen).groups()
        deadline = time.monotonic() + STEP_S
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    page = reply.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert "locker-kiosk" in page  # textual-serve's page of the keypad app
        with ApiClient(str(tmp_path / "kiosk.sock")) as client:
            assert client.call("tech.login", pin=pin)["technician_id"] == technician
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C: the server stops, then the demo's daemon
        try:
            proc.wait(timeout=STEP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "kiosk daemon stopped" in (tmp_path / "daemon.log").read_text()
