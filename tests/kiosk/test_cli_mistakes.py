"""Operator mistakes on the `kiosk` command line, as real processes: one line, a stated exit code.

A port taken or out of range for `kiosk ui --web`, a stdout closed before the
command is done (`kiosk status --json | head -c 120`), and `kiosk demo` asked
for two ways of running at once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.closed_stdout import EXIT_CLOSED_STDOUT, run_with_closed_stdout
from support.daemon_proc import CLI_TIMEOUT_S, DaemonProcess, short_dir, write_config

KIOSK = [sys.executable, "-m", "kiosk"]
EX_UNAVAILABLE = 69


def kiosk(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*KIOSK, *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        **kwargs,
    )


def one_line(done: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    output = f"exit {done.returncode}\nstdout: {done.stdout!r}\nstderr: {done.stderr!r}"
    assert done.returncode == code, output
    assert "Traceback" not in done.stderr and "bug" not in done.stderr, output
    lines = done.stderr.splitlines()
    assert len(lines) == 1, output
    for name in names:
        assert name in lines[0], output
    return lines[0]


# --- kiosk ui --web: the port ------------------------------------------------------


def test_a_port_in_use_is_one_line_naming_it_and_exit_69(tmp_path):
    config = write_config(short_dir(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = kiosk(
            "ui", "--web", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)
        )
    line = one_line(done, EX_UNAVAILABLE, f"port {port} on 127.0.0.1 is in use", "--port")
    assert line.startswith("error: ")


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1"])
def test_a_port_outside_1_to_65535_is_bad_usage(tmp_path, port):
    config = write_config(short_dir(tmp_path))
    done = kiosk("ui", "--web", "--config", str(config), "--port", port)
    assert done.returncode == 2, done.stderr
    assert "--port" in done.stderr and "1 to 65535" in done.stderr
    assert "Traceback" not in done.stderr


# --- kiosk demo --web --headless ---------------------------------------------------


def test_demo_web_and_headless_together_is_refused_in_one_line(tmp_path):
    state = tmp_path / "state"
    done = kiosk("demo", "--web", "--headless", "--state-dir", str(state))
    one_line(done, 2, "--web", "--headless")
    assert done.stdout == ""
    assert not state.exists()  # refused before it made anything


# --- a stdout closed before the command is done --------------------------------------


def closed_stdout(*argv: str) -> subprocess.CompletedProcess[str]:
    """`kiosk ARGV` writing into a pipe whose reading end is already closed."""
    return run_with_closed_stdout([*KIOSK, *argv])


def quiet_end(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == EXIT_CLOSED_STDOUT, done.stderr
    assert done.stderr == ""


def test_a_closed_stdout_ends_config_check_quietly(tmp_path):
    config = write_config(short_dir(tmp_path))
    quiet_end(closed_stdout("config", "check", str(config)))


def test_a_closed_stdout_ends_status_json_quietly(tmp_path):
    config = write_config(short_dir(tmp_path))
    with DaemonProcess(config):
        quiet_end(closed_stdout("--config", str(config), "status", "--json"))
        quiet_end(closed_stdout("--config", str(config), "status"))
        # The daemon is none the worse: the next reader gets the whole answer.
        done = kiosk("--config", str(config), "status", "--json")
        assert done.returncode == 0 and done.stdout.startswith("{"), done.stderr


def test_a_closed_stdout_is_quiet_with_the_installed_script_too(tmp_path):
    script = Path(sys.executable).parent / "kiosk"
    if not script.exists():
        pytest.skip(f"no kiosk script next to {sys.executable}")
    config = write_config(short_dir(tmp_path))
    quiet_end(run_with_closed_stdout([str(script), "config", "check", str(config)]))
