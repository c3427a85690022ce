"""`kiosk demo` as a new user runs it: headless, and typed at through a pipe."""

from __future__ import annotations

import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=state,
    )  # fmt: skip
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
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=state,
    )  # fmt: skip
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


# --- interactive, through a pipe ------------------------------------------------


class Demo:
    """`kiosk demo` with its stdin and stdout on pipes; a thread collects stdout lines."""

    def __init__(self, state: Path) -> None:
        self.proc = subprocess.Popen(
            kiosk("demo", "--state-dir", str(state)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, cwd=state,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def expect(self, pattern: str, timeout_s: float = STEP_S) -> re.Match[str]:
        """The first new stdout line matching `pattern` (a regex); fails fast on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout_s}s; saw {self.seen}")
            if line is None:
                pytest.fail(f"demo ended before {pattern!r}; saw {self.seen}; {self.stderr}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STEP_S)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_interactive_demo_through_a_pipe(demo, tmp_path):
    demo.expect(r"^Sample parcels")
    for _ in range(3):
        demo.expect(r"^  \S+  size [SML]  delivery code \d{6}  pickup code \d{6}$")
    demo.expect(r"Type a code and press Enter")
    rows = read_codes(tmp_path)  # written before the codes are printed
    parcel, delivery, pickup = rows[0]

    demo.type(delivery)
    label = demo.expect(r"Locker (\S+) is open \(courier\)\.")[1]

    taken = {c for _, d, p in rows for c in (d, p)}
    wrong = next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in taken)
    demo.type(wrong)
    demo.expect(r"That code is not valid\. .*4 tries left\. \[invalid_code\]")

    # The simulated courier shuts the door after 3 s: the parcel is in.
    demo.expect(
        rf"Door {label} shut: delivered; locker {label}: OCCUPIED, parcel {parcel}: DELIVERED"
    )
    demo.type(pickup)
    demo.expect(rf"Locker {label} is open \(customer\)\.")

    demo.type("q")
    assert demo.proc.wait(timeout=STEP_S) == 0
    assert "Traceback" not in "".join(demo.stderr)


def test_interactive_demo_ends_at_end_of_input(tmp_path):
    proc = subprocess.run(
        kiosk("demo", "--state-dir", str(tmp_path)),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Sample parcels" in proc.stdout
    assert len(read_codes(tmp_path)) == 3
