"""`kiosk run` as a real subprocess on a `simulated` bus, and `kiosk` commands run beside it.

Nothing here reaches into the daemon: it is started with `python -m kiosk
--config FILE run`, found ready by a `hello` on its socket, driven by `kiosk`
commands in their own processes and stopped with a signal. Every process is
killed in `close()` whatever happened, and the daemon's output is kept in a
log file that failures quote. A `kiosk run` that cannot start is run to its
end by `run_to_end` and its one stderr line read by `one_error_line`; the
boards it talks to may be a simulator on a pty (`pty_simulator`).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kiosk.api.client import ApiClient, ApiError, DaemonUnreachable
from kiosk.ledger.db import Ledger
from kiosk.ledger.migrations import known_version

#: (label, size, channel) of the test bank: one simulated board, unit 1.
LOCKERS = [("A-1", "S", 0), ("A-2", "S", 1), ("B-1", "M", 2), ("C-1", "L", 3)]

#: Generous: other test runs share the machine. Nothing asserts on elapsed time.
READY_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 60.0


def short_dir(base: Path) -> Path:
    """`base`, or a fresh short dir under /tmp when a socket path in `base` would be too long.

    AF_UNIX paths are limited to 107 bytes, and pytest's tmp_path can come near it.
    """
    if len(str(base / "kiosk.sock")) < 100:
        return base
    return Path(tempfile.mkdtemp(prefix="kiosk-", dir="/tmp"))


def write_config(
    state: Path,
    door_close_s: float = 0.5,
    policy: Mapping[str, Any] | None = None,
) -> Path:
    """A key file and a kiosk.toml in `state` for a simulated bank; returns the config path."""
    key = state / "site-code.key"
    if not key.exists():
        key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    rules = {"door_open_timeout_s": 2.0, "unlock_retries": 1, **(policy or {})}
    lines = [
        "[site]",
        'id = "proc-01"',
        'name = "Subprocess bank"',
        "[ledger]",
        f"path = {json.dumps(str(state / 'ledger.db'))}",
        "[keys]",
        f"site_code_key_file = {json.dumps(str(key))}",
        "[api]",
        f"socket = {json.dumps(str(state / 'kiosk.sock'))}",
        "[[bus]]",
        'name = "sim"',
        'kind = "simulated"',
        "poll_ms = 20",
        f"door_close_s = {float(door_close_s)}",
        "[[board]]",
        'bus = "sim"',
        "unit = 1",
        f"channels = {len(LOCKERS)}",
    ]
    for label, size, channel in LOCKERS:
        lines += [
            "[[locker]]",
            f'label = "{label}"',
            f'size = "{size}"',
            'bus = "sim"',
            "unit = 1",
            f"channel = {channel}",
        ]
    lines.append("[policy]")
    lines += [f"{name} = {json.dumps(value)}" for name, value in rules.items()]
    path = state / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def newer_ledger(path: Path) -> int:
    """A real ledger of today's schema at `path`, then marked as one migration ahead of this code.

    As after an upgrade rolled back without its ledger: returns the schema it now carries.
    """
    Ledger.open(path).close()
    newer = known_version() + 1
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return newer


def kiosk(
    config: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run one `kiosk` command (as `python -m kiosk --config FILE ...`) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def kiosk_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Exit code and the parsed JSON stdout of a `kiosk ... --json` command."""
    done = kiosk(config, *args, "--json")
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"kiosk {' '.join(args)} --json printed no JSON (exit {done.returncode}):\n"
            f"stdout: {done.stdout!r}\nstderr: {done.stderr!r}"
        ) from None
    return done.returncode, data


def wait_until(
    predicate: Callable[[], bool], timeout: float = READY_TIMEOUT_S, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


def run_to_end(config: Path, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """`kiosk run` to its end (a failed start ends by itself), its stdout and stderr captured.

    `prefix` runs it under another command (`setpriv ...`, `unshare ... sh -c ...`).
    """
    return subprocess.run(
        [*prefix, sys.executable, "-m", "kiosk", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """The run's only stderr line, `error: ...`, after checking the exit code and that it
    names every one of `names`; nothing on stdout and no traceback."""
    output = f"exit {done.returncode}\nstdout: {done.stdout!r}\nstderr: {done.stderr!r}"
    assert done.returncode == code, output
    assert "Traceback" not in done.stderr, output
    lines = done.stderr.splitlines()
    assert len(lines) == 1, output
    assert done.stdout == "", output
    line = lines[0]
    assert line.startswith("error: "), output
    for name in names:
        assert name in line, output
    return line


@contextmanager
def pty_simulator(*argv: str) -> Iterator[str]:
    """`python -m ARGV...`, a board simulator that prints its pty's path first; yields the path.

    The simulator is killed on the way out, whatever happened.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()  # printed and flushed first, or EOF if it died
        assert path.startswith("/dev/"), f"{' '.join(argv)} printed {path!r}"
        yield path
    finally:
        proc.kill()
        proc.wait(CLI_TIMEOUT_S)


class DaemonProcess:
    """One `kiosk run` child. Use as a context manager: the child never outlives the test."""

    def __init__(self, config: Path, env: Mapping[str, str] | None = None) -> None:
        self.config = Path(config)
        self.socket = self.config.parent / "kiosk.sock"
        self.log_path = self.config.parent / "daemon.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, wait: bool = True) -> DaemonProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk", "--config", str(self.config), "run"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.config.parent,  # whatever it writes by a relative path stays here
            )
        if wait:
            self.wait_ready()
        return self

    def hello(self) -> dict[str, Any] | None:
        """The daemon's `hello`, or None while nothing answers on its socket."""
        try:
            with ApiClient(str(self.socket), timeout_s=5.0) as client:
                return client.call("hello")
        except (DaemonUnreachable, ApiError, OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"kiosk run exited with {self.proc.returncode} before it was ready:\n"
                    + self.log()
                )
            hello = self.hello()
            if hello is not None:
                return hello
            time.sleep(0.05)
        raise AssertionError(f"kiosk run not ready within {timeout} s:\n" + self.log())

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = READY_TIMEOUT_S) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"kiosk run did not exit within {timeout} s:\n" + self.log()
            ) from None

    def terminate(self, timeout: float = READY_TIMEOUT_S) -> int:
        """SIGTERM, then the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as a crash or the OOM killer would leave it."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(READY_TIMEOUT_S)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(READY_TIMEOUT_S)
