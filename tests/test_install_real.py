"""install.sh's real path (no --root), as root, where systemd does not run: a container.

What `sudo ./install.sh` does on a bank, run for real: systemd-sysusers makes
the users, systemd-tmpfiles the folders, systemctl enables the units (links
in /etc/systemd/system; with no systemd running nothing can be started, and
install.sh says so in one line), then the daemon is started by hand from the
installed virtualenv as its unit would start it, and `kiosk doctor` asks it;
then an upgrade and `--uninstall`.

Isolated, so the machine is not changed: a private mount and network
namespace (`unshare`) where /etc, /opt, /var, /usr and /run are overlays
whose writes land in the test's tmp dir. Offline: `--wheels` from a folder
of the device wheel and every dependency's wheel, made with pip from its
cache before the namespace (which has no network). Skipped, saying why, when
not root, without unshare or overlays, or on a machine systemd runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_install import INSTALL, TIMEOUT_S, mode, wheels

__all__ = ["wheels"]  # the device wheel, built once (test_install.py)

#: Debian's sudo PATH (secure_path): what `sudo ./install.sh` runs with.
SUDO_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Every place install.sh writes lies under these; each becomes an overlay whose
#: upper folder is in the test's tmp dir, so the machine itself is not changed.
MOUNTS = """
for d in etc opt var usr run; do
    mkdir -p "$OV/u/$d" "$OV/w/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$OV/u/$d,workdir=$OV/w/$d" "/$d"
done
ip link set lo up
"""
#: The unit's ExecStart by hand (no systemd to start it): as kiosk, until its API answers.
RUN_DAEMON = """
cd /var/lib/kiosk
umask 0027
LG_WD=/var/lib/kiosk setpriv --reuid=kiosk --regid=kiosk --groups=dialout,gpio --inh-caps=-all \
    /opt/kiosk/venv/bin/kiosk --config /etc/kiosk/kiosk.toml run 2>"$OV/daemon.log" &
pid=$!
until kiosk status >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "the daemon exited: $(cat "$OV/daemon.log")"; exit 3; }
    sleep 0.1
done
kiosk doctor && echo "doctor: exit 0"
kill -TERM "$pid"
wait "$pid" && echo "daemon: exit 0"
"""


def in_namespace(overlay: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "KIOSK_"))}
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "bash",
            "-euc",
            MOUNTS + script,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env={**env, "OV": str(overlay), "PATH": SUDO_PATH, "PIP_CONFIG_FILE": os.devnull},
    )


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skips, saying why, where the real path cannot run isolated."""
    if os.geteuid() != 0:
        pytest.skip("the real install path needs root (CI runs it as root)")
    for tool in ("unshare", "setpriv", "ip", "systemctl", "systemd-sysusers", "systemd-tmpfiles"):
        if shutil.which(tool, path=SUDO_PATH) is None:
            pytest.skip(f"{tool} is not installed")
    if Path("/run/systemd/system").exists():
        pytest.skip("systemd runs this machine: the real install path would enable units on it")
    python = subprocess.run(
        ["python3", "-c", "import ensurepip, sys; ensurepip.version(); print(sys.version[:4])"],
        capture_output=True,
        text=True,
        env={"PATH": SUDO_PATH},
        check=False,
    )
    if python.stdout.strip() != f"{sys.version_info[0]}.{sys.version_info[1]}":
        pytest.skip(f"the system's python3 is not this Python with venv: {python.stderr.strip()}")
    probe = in_namespace(tmp_path_factory.mktemp("probe"), "true")
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace with overlays here: {probe.stderr.strip()}")


@pytest.fixture(scope="module")
def wheelhouse(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The device wheel and every dependency's, as an operator brings them on a USB stick."""
    out = tmp_path_factory.mktemp("wheelhouse")
    (wheel,) = wheels.glob("*.whl")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(out), str(wheel)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot gather the dependencies' wheels (offline, no pip cache): {done.stderr}"
        )
    return out


def operators_edit(config: Path) -> None:
    """The shipped config, made to describe a bank on the simulated bus with no cloud link."""
    text = config.read_text().replace('kind = "modbus-rtu"', 'kind = "simulated"', 1)
    drop = r'^(port = "/dev/ttyUSB0"|baudrate = 115200|cloud_public_key_file = .*)\n'
    text = re.sub(drop, "", text, flags=re.M)
    text = re.sub(r"^\[mqtt\]\n(?:(?!\[|# ---).*\n)*", "", text, flags=re.M)
    config.write_text(text + "# edited for this bank\n")


def test_the_real_path_installs_starts_upgrades_and_uninstalls(
    tmp_path: Path, namespace: None, wheelhouse: Path
) -> None:
    """`sudo ./install.sh` where systemd does not run (a container): users, folders, units."""
    ov, passwd_before = tmp_path / "ov", Path("/etc/passwd").read_bytes()
    outside = {p: p.exists() for p in (Path("/opt/kiosk"), Path("/etc/kiosk"), Path("/run/kiosk"))}
    install_sh = f"bash {shlex.quote(str(INSTALL))} --wheels {shlex.quote(str(wheelhouse))}"

    first = in_namespace(ov, install_sh)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "systemd is not running here" in out and "nothing started" in out, out
    assert "enabled kiosk.service kiosk-backup.timer kiosk-ui.service" in out, out
    assert "running kiosk doctor" in out and "Traceback" not in first.stderr, out
    tree = in_namespace(
        ov,
        "stat -c '%n %a %U:%G' /etc/kiosk/site-code.key /var/lib/kiosk /run/kiosk"
        " /var/backups/kiosk /etc/systemd/system/multi-user.target.wants/kiosk.service"
        " /etc/systemd/system/timers.target.wants/kiosk-backup.timer; id kiosk",
    )
    assert tree.returncode == 0, tree.stderr
    for line in (
        "/etc/kiosk/site-code.key 640 root:kiosk",
        "/var/lib/kiosk 700 kiosk:kiosk",
        "/run/kiosk 750 kiosk:kiosk",
        "/var/backups/kiosk 750 kiosk:kiosk",
    ):
        assert line in tree.stdout, tree.stdout
    assert "uid=" in tree.stdout and "(kiosk)" in tree.stdout, tree.stdout

    # The daemon, from the installed venv, as its unit would start it.
    config, key = ov / "u/etc/kiosk/kiosk.toml", ov / "u/etc/kiosk/site-code.key"
    operators_edit(config)
    ran = in_namespace(ov, RUN_DAEMON)
    assert ran.returncode == 0, ran.stdout + ran.stderr + (ov / "daemon.log").read_text()
    assert "healthy" in ran.stdout and "doctor: exit 0" in ran.stdout, ran.stdout
    assert "daemon: exit 0" in ran.stdout, ran.stdout + (ov / "daemon.log").read_text()
    edited, key_text = config.read_bytes(), key.read_bytes()

    second = in_namespace(ov, install_sh)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "upgrading" in second.stdout and "backed up the ledger" in second.stdout, second.stdout
    assert "kept /etc/kiosk/kiosk.toml" in second.stdout, second.stdout
    assert config.read_bytes() == edited and key.read_bytes() == key_text
    (backup,) = (ov / "u/var/backups/kiosk").glob("before-upgrade-*.db")
    assert mode(backup) == 0o640

    gone = in_namespace(
        ov,
        f"bash {shlex.quote(str(INSTALL))} --uninstall;"
        " ls -d /opt/kiosk /etc/systemd/system/kiosk.service"
        " /etc/systemd/system/multi-user.target.wants/kiosk.service 2>&1 || true;"
        " ls /etc/kiosk /var/lib/kiosk/ledger.db",
    )
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "No such file" in gone.stdout and "/opt/kiosk:" not in gone.stdout, gone.stdout
    assert gone.stdout.count("No such file") == 3, gone.stdout
    assert "site-code.key" in gone.stdout and "/var/lib/kiosk/ledger.db" in gone.stdout
    # Nothing reached the machine itself.
    assert Path("/etc/passwd").read_bytes() == passwd_before
    assert {p: p.exists() for p in outside} == outside


def one_line_and_nothing_changed(done: subprocess.CompletedProcess[str], ov: Path) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    for made in ("opt/kiosk", "etc/kiosk", "etc/sysusers.d", "etc/passwd"):
        assert not (ov / "u" / made).exists(), f"{made} was changed: {line}"
    return line


def test_no_venv_module_stops_in_one_line_before_any_change(
    tmp_path: Path, namespace: None
) -> None:
    """Debian without python3-venv (hidden here under an empty folder), offline with --wheels."""
    ov = tmp_path / "ov"
    done = in_namespace(
        ov,
        "mount -t tmpfs tmpfs /usr/lib/python3*/ensurepip;"
        f" bash {shlex.quote(str(INSTALL))} --wheels {shlex.quote(str(tmp_path))}",
    )
    line = one_line_and_nothing_changed(done, ov)
    assert line.startswith("install.sh: error: python3's venv module is missing"), line
    assert "apt-get install python3-venv" in line, line


def test_a_python3_the_service_user_cannot_run_stops_in_one_line(
    tmp_path: Path, namespace: None
) -> None:
    """A python3 under a closed folder (pyenv in /root) would make a venv kiosk cannot run."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    python = Path(shutil.which("python3", path=SUDO_PATH) or "python3").resolve()
    shutil.copy2(python, closed / "python3")
    ov = tmp_path / "ov"
    done = in_namespace(
        ov,
        f"PATH={shlex.quote(str(closed))}:$PATH"
        f" bash {shlex.quote(str(INSTALL))} --wheels {shlex.quote(str(tmp_path))}",
    )
    line = one_line_and_nothing_changed(done, ov)
    assert line.startswith(f"install.sh: error: python3 is {closed}/python3"), line
    assert "service user kiosk" in line and "/usr/bin/python3" in line, line
