"""`kiosk run` that cannot start: one line on stderr naming the thing, the reason and the fix.

Each case is a real `kiosk run` subprocess on a config that points at the bad
thing, and each must end with exactly one line on stderr (no traceback, no
log lines) and a sysexits code: 69 a device not there or not usable, 78 a
config that does not match the board, 73 a file that cannot be created.

How the awkward cases are made real (the tests run as root here, and root
ignores file modes):
* permission denied on the serial port: a pty made mode 000, opened by a
  `kiosk run` without the capabilities that bypass file permissions
  (util-linux `setpriv`, as in test_cli_unreachable.py);
* a folder that cannot be created: a path under a regular FILE (ENOTDIR,
  whoever you are);
* a full disk: a 64 KiB tmpfs filled to the last byte, mounted in a private
  user + mount namespace (`unshare -rm`), so no root is needed and the host
  sees nothing; skipped where user namespaces are not allowed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon_proc import (
    CLI_TIMEOUT_S,
    DaemonProcess,
    one_error_line,
    pty_simulator,
    run_to_end,
    short_dir,
    write_config,
)

EX_UNAVAILABLE, EX_CANTCREAT, EX_CONFIG = 69, 73, 78


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


def rtu_config(
    state: Path,
    port: str,
    unit: int = 1,
    channels: int = 2,
    ledger: Path | None = None,
    socket: Path | None = None,
) -> Path:
    """A modbus-rtu bank: one board at `unit` with `channels` lockers, on serial `port`."""
    key = state / "site-code.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    lines = [
        "[site]",
        'id = "start-01"',
        'name = "Start-up bank"',
        "[ledger]",
        f"path = {json.dumps(str(ledger or state / 'ledger.db'))}",
        "[keys]",
        f"site_code_key_file = {json.dumps(str(key))}",
        "[api]",
        f"socket = {json.dumps(str(socket or state / 'kiosk.sock'))}",
        "[[bus]]",
        'name = "rs485"',
        'kind = "modbus-rtu"',
        f"port = {json.dumps(port)}",
        "timeout_s = 1.0",  # generous: the machine is shared; a silent unit costs 3 of them
        "[[board]]",
        'bus = "rs485"',
        f"unit = {unit}",
        f"channels = {channels}",
    ]
    for channel in range(channels):
        lines += [
            "[[locker]]",
            f'label = "A-{channel + 1}"',
            'size = "S"',
            'bus = "rs485"',
            f"unit = {unit}",
            f"channel = {channel}",
        ]
    path = state / "kiosk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def board() -> Iterator[str]:
    """`kiosk simulate board --pty`: one board at unit 1 with 2 channels; yields its pty."""
    with pty_simulator(
        "kiosk", "simulate", "board", "--pty", "--units", "1", "--channels", "2"
    ) as path:
        yield path


def without_dac_override() -> list[str]:
    """A prefix that runs a command without the power to ignore file modes (root or not)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without util-linux setpriv: root opens any device")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, "--inh-caps", drop, "--bounding-set", drop]


# --- devices (69) and a board that does not match the config (78) ---------------


def test_a_serial_port_that_does_not_exist(state):
    port = f"/dev/ttyKIOSK-{uuid.uuid4().hex[:8]}"
    done = run_to_end(rtu_config(state, port))
    line = one_error_line(done, EX_UNAVAILABLE, port, "does not exist")
    assert "check the USB/RS-485 adapter" in line


def test_a_serial_port_without_permission(state):
    prefix = without_dac_override()
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        os.chmod(port, 0o000)
        done = run_to_end(rtu_config(state, port), prefix)
    finally:
        os.close(master)
        os.close(slave)
    line = one_error_line(done, EX_UNAVAILABLE, port, "permission denied")
    assert "dialout" in line


def test_a_board_that_does_not_answer_at_its_unit(state, board):
    done = run_to_end(rtu_config(state, board, unit=2))
    line = one_error_line(done, EX_UNAVAILABLE, board, "unit 2", "no board answered")
    assert "DIP switches" in line


def test_a_board_with_fewer_channels_than_the_config_gives_it(state, board):
    done = run_to_end(rtu_config(state, board, unit=1, channels=4))
    line = one_error_line(done, EX_CONFIG, "board 1", "board has 2 channels", "config asks for 4")
    assert "`channels`" in line


# --- files and folders (73) ------------------------------------------------------


def test_a_ledger_folder_that_cannot_be_created(state):
    (state / "file").write_text("a regular file, not a folder\n")
    folder = state / "file" / "sub"
    done = run_to_end(rtu_config(state, "/dev/null", ledger=folder / "ledger.db"))
    line = one_error_line(done, EX_CANTCREAT, str(folder), "Not a directory")
    assert "`ledger.path`" in line


def test_a_socket_folder_that_cannot_be_created(state):
    (state / "file").write_text("a regular file, not a folder\n")
    folder = state / "file" / "sub"
    done = run_to_end(rtu_config(state, "/dev/null", socket=folder / "kiosk.sock"))
    line = one_error_line(done, EX_CANTCREAT, str(folder), "Not a directory")
    assert "`api.socket`" in line
    assert not (state / "ledger.db").exists()  # it failed before it touched the ledger


def test_a_second_daemon_on_a_socket_another_one_holds(state):
    config = write_config(state)
    with DaemonProcess(config) as first:
        done = run_to_end(config)
        line = one_error_line(done, EX_CANTCREAT, str(first.socket), "Another daemon is serving")
        assert "systemctl stop kiosk" in line
        assert first.hello() is not None


def test_a_full_disk_says_so_and_how_much_the_ledger_needs(state):
    """Not "restore a backup": nothing is damaged. The tmpfs is full to its last byte."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("util-linux unshare is not installed")
    probe = subprocess.run(
        [unshare, "-rm", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"no private tmpfs here (user namespaces not allowed): {probe.stderr}")
    disk = state / "disk"
    disk.mkdir()
    config = rtu_config(state, "/dev/null", ledger=disk / "ledger.db")
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {disk} && "
        f"{{ dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null; true; }} && "
        f'exec "$@"'
    )
    done = run_to_end(config, [unshare, "-rm", "sh", "-c", script, "sh"])
    line = one_error_line(done, EX_CANTCREAT, str(disk / "ledger.db"), "is full", "needs at least")
    assert "MiB" in line
    assert "backup" not in line.lower() and "restore" not in line.lower()


# --- an unexpected exception (a bug): one line, and where the trace went (70) -----------

#: `kiosk run` with a fault planted in the child: no bug can be had on demand, so the
#: daemon's start is replaced there by one that raises, and the real CLI does the rest.
BUGGY_RUN = """
import sys
import kiosk.daemon.app

async def start(self):
    raise RuntimeError("planted fault")

kiosk.daemon.app.Daemon.start = start
from kiosk.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_buggy(config: Path, stderr, env: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-c", BUGGY_RUN, "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        timeout=CLI_TIMEOUT_S,
        env=env,
        check=False,
    ).returncode


def test_an_unexpected_error_prints_one_line_naming_the_file_with_the_trace(state):
    config = write_config(state)
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    err = state / "stderr.txt"
    with open(err, "w") as stderr:
        code = run_buggy(config, stderr, env)
    lines = err.read_text().splitlines()
    assert code == 70, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: unexpected RuntimeError: planted fault;"), line
    trace_file = Path(line.rsplit("full trace in ", 1)[1])
    try:
        trace = trace_file.read_text()
    finally:
        trace_file.unlink()
    assert "Traceback" in trace and "planted fault" in trace


def test_under_systemd_the_trace_goes_to_the_journal_and_the_line_says_so(state):
    """systemd marks stderr as the journal with $JOURNAL_STREAM = its device:inode."""
    config = write_config(state)
    err = state / "journal.txt"
    with open(err, "w") as stderr:
        info = os.fstat(stderr.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        code = run_buggy(config, stderr, env)
    text = err.read_text()
    assert code == 70, text
    assert "Traceback" in text and "planted fault" in text
    assert text.splitlines()[-1] == (
        "error: unexpected RuntimeError: planted fault; this is a bug: "
        "full trace in the journal: journalctl -u kiosk"
    )


# --- the cloud link's TLS files (78) ---------------------------------------------


@pytest.mark.parametrize("missing", ["ca_file", "cert_file", "key_file"])
def test_a_missing_tls_file_is_named_by_its_key_and_path(state, missing):
    config = write_config(state)
    files = {name: state / f"{name}.pem" for name in ("ca_file", "cert_file", "key_file")}
    for name, path in files.items():
        if name != missing:
            path.write_text("whatever: the missing one is named before any is read\n")
    with config.open("a") as fh:
        fh.write('\n[mqtt]\nhost = "127.0.0.1"\nport = 8883\n')
        fh.writelines(f"{name} = {json.dumps(str(path))}\n" for name, path in files.items())
    done = run_to_end(config)
    line = one_error_line(done, EX_CONFIG, f"mqtt.{missing}: {files[missing]}: no such file")
    assert "[Errno" not in line
