"""`kiosk` commands that cannot reach the daemon: exit 3, and a message that says what to do.

Three ways to miss it: no socket file, a socket file nobody listens on (left
by a crash), and a socket the user may not connect to. The last one needs a
caller the file's permissions apply to. Root ignores them (CAP_DAC_OVERRIDE),
and this project's Python may live where no other user can run it, so as
root the command runs as root without the capabilities that bypass file
permissions (util-linux `setpriv`), against the real daemon's socket made
mode 000; as anyone else, the same socket with mode 000 is enough.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon_proc import CLI_TIMEOUT_S, kiosk, short_dir, write_config
from support.daemon_rig import DaemonRig

NO_DAEMON = 3
COMMANDS = [["status"], ["status", "--json"], ["doors"], ["parcels"], ["selftest"]]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


def unprivileged(args: list[str]) -> list[str]:
    """`args` as this user without the power to ignore file permissions."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root, which connects to any socket whatever its mode, and without "
            "util-linux setpriv to drop CAP_DAC_OVERRIDE: a permission-denied socket "
            "cannot be shown here"
        )
    drop = "-dac_override,-dac_read_search"
    return [setpriv, "--inh-caps", drop, "--bounding-set", drop, *args]


def kiosk_as_user(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        unprivileged([sys.executable, "-m", "kiosk", "--config", str(config), *args]),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_socket_file_says_the_daemon_is_not_running_and_how_to_start_it(state, command):
    config = write_config(state)
    path = state / "kiosk.sock"
    assert not path.exists()
    done = kiosk(config, *command)
    assert done.returncode == NO_DAEMON, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: No daemon socket at {path}."), done.stderr
    assert "Is the daemon running?" in done.stderr
    assert "systemctl start kiosk" in done.stderr and "kiosk run" in done.stderr


def test_a_socket_nobody_listens_on_says_the_daemon_does_not_answer(state):
    config = write_config(state)
    path = state / "kiosk.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file a crashed daemon leaves behind
    done = kiosk(config, "status")
    assert done.returncode == NO_DAEMON, done.stdout + done.stderr
    assert done.stdout == ""
    assert f"The daemon does not answer on {path}" in done.stderr
    assert "systemctl status kiosk" in done.stderr
    assert "No daemon socket" not in done.stderr and "Permission denied" not in done.stderr


async def test_a_socket_the_user_may_not_use_says_permission_denied_and_who_may(state):
    async with DaemonRig(state) as rig:
        config = write_config(state)
        path = Path(rig.socket)
        assert path == state / "kiosk.sock"
        os.chmod(path, 0o000)
        try:
            for command in (["status"], ["doors", "--json"]):
                done = await asyncio.to_thread(kiosk_as_user, config, *command)
                assert done.returncode == NO_DAEMON, done.stdout + done.stderr
                assert done.stdout == ""
                assert done.stderr.strip() == (
                    f"error: Permission denied on {path}: "
                    "run as the kiosk user or a member of its group."
                )
        finally:
            os.chmod(path, 0o660)
        # The same caller, the mode the daemon gives its socket: it gets through.
        done = await asyncio.to_thread(kiosk_as_user, config, "status")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "site rig-01" in done.stdout
