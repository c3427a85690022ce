"""install.sh into a staging root, twice, then --uninstall: the tree, the modes, the units.

Offline and quick: the device wheel is built here from a copy of the checkout
(as in test_packaging.py) and installed with `--wheels`; `PIP_NO_DEPS=1`
keeps pip from looking for the dependencies, which the staged program does
not need for `--version`. As root, install.sh runs without any capability
(util-linux `setpriv`), which shows `--root` needs no root rights: a chown or
a write outside the staging root would fail.

The staged units are checked with `systemd-analyze verify --root`, against a
root that has what a Debian system brings: systemd's own units, /bin/sh, and
cage for the browser screen (stand-ins).
"""

from __future__ import annotations

import configparser
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from test_packaging import _SKIP, build_wheel

from kiosk import __version__
from kiosk.domain.codes import parse_code_key
from kiosk.ledger.db import Ledger
from kiosk.ledger.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "install.sh"
UNITS = sorted(p.name for p in (ROOT / "systemd").iterdir() if p.suffix in (".service", ".timer"))
TIMEOUT_S = 300
VENV = "/opt/kiosk/venv"
#: Staged path -> (mode, the source it is a copy of, or None).
FILES = {
    "etc/kiosk/kiosk.toml": (0o644, "config/kiosk.toml"),
    "etc/kiosk/site-code.key": (0o640, None),
    "etc/sysusers.d/kiosk.conf": (0o644, "systemd/kiosk.sysusers"),
    "etc/tmpfiles.d/kiosk.conf": (0o644, "systemd/kiosk.tmpfiles"),
    "etc/udev/rules.d/99-kiosk-rs485.rules": (0o644, "config/udev/99-kiosk-rs485.rules"),
    "etc/udev/rules.d/99-kiosk-gpio.rules": (0o644, "config/udev/99-kiosk-gpio.rules"),
    "etc/pam.d/kiosk-browser": (0o644, "systemd/kiosk-browser.pam"),
    **{f"etc/systemd/system/{name}": (0o644, f"systemd/{name}") for name in UNITS},
}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("checkout") / "locker-kiosk"
    shutil.copytree(ROOT, copy, ignore=_SKIP)
    out = tmp_path_factory.mktemp("wheels")
    build_wheel(copy, out).close()
    return out


def install(root: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(INSTALL), "--root", str(root), *args]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        argv = ["setpriv", "--inh-caps", "-all", "--bounding-set", "-all", *argv]
    env = {**os.environ, "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1"}
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False
    )
    assert done.returncode == code, f"install.sh {args}: exit {done.returncode}\n{done.stderr}"
    return done


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def check_tree(root: Path) -> None:
    for name, (wanted, source) in FILES.items():
        path = root / name
        assert path.is_file(), f"{name} was not installed"
        assert mode(path) == wanted, f"{name}: mode {mode(path):o}, not {wanted:o}"
        if source and name != "etc/kiosk/kiosk.toml":
            assert path.read_bytes() == (ROOT / source).read_bytes(), f"{name} is not {source}"
    assert mode(root / "etc/kiosk") == 0o755
    # The program, in its own venv, named by its target path, not the staging one.
    kiosk = root / VENV.lstrip("/") / "bin/kiosk"
    assert os.access(kiosk, os.X_OK)
    assert kiosk.read_text().splitlines()[0] == f"#!{VENV}/bin/python"
    for name in ("bin/activate", "pyvenv.cfg"):
        assert str(root) not in (root / VENV.lstrip("/") / name).read_text(), name
    assert os.readlink(root / "usr/local/bin/kiosk") == f"{VENV}/bin/kiosk"
    done = subprocess.run(
        [str(root / VENV.lstrip("/") / "bin/python"), "-m", "kiosk", "--version"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0 and __version__ in done.stdout, done.stdout + done.stderr
    # Every unit's Documentation= file is there.
    for name in UNITS:
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read(ROOT / "systemd" / name)
        for url in unit.get("Unit", "Documentation", fallback="").split():
            assert (root / url.removeprefix("file:///")).is_file(), f"{name}: {url}"
    # The site key is a key, readable by group kiosk only; nothing is writable by others.
    parse_code_key((root / "etc/kiosk/site-code.key").read_text())
    for path in root.rglob("*"):
        if not path.is_symlink():
            assert not mode(path) & 0o022, (
                f"{path.relative_to(root)} is writable by group or others ({mode(path):o})"
            )


def verify_units(root: Path) -> None:
    """`systemd-analyze verify --root` on the staged units; it says nothing when they are clean."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd; .ci/run adds it)")
    system = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")))
    if not (root / "usr/lib/systemd/system").exists():  # a merged-/usr system's own units
        shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
        (root / "lib").symlink_to("usr/lib")
    for tool in ("bin/sh", "usr/bin/cage"):
        stand_in = root / tool
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\n")
        stand_in.chmod(0o755)
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", "--man=no", *UNITS],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for tool in ("bin/sh", "usr/bin/cage"):
        (root / tool).unlink()


def test_install_twice_then_uninstall(tmp_path: Path, wheels: Path) -> None:
    root = tmp_path / "root"

    first = install(root, "--wheels", str(wheels))
    check_tree(root)
    assert (root / "etc/kiosk/kiosk.toml").read_bytes() == (ROOT / "config/kiosk.toml").read_bytes()
    assert "made a new site key" in first.stdout
    verify_units(root)

    # The bank is used: the operator edits the config; the daemon makes its ledger.
    config = root / "etc/kiosk/kiosk.toml"
    config.write_text(config.read_text() + "# edited for this bank\n")
    edited, key = config.read_bytes(), (root / "etc/kiosk/site-code.key").read_bytes()
    ledger = root / "var/lib/kiosk/ledger.db"
    Ledger.open(ledger).close()

    second = install(root, "--wheels", str(wheels))
    assert "upgrading" in second.stdout and "backed up the ledger" in second.stdout
    check_tree(root)
    verify_units(root)
    assert config.read_bytes() == edited, "the config was overwritten"
    assert (root / "etc/kiosk/site-code.key").read_bytes() == key, "the site key was replaced"
    (backup,) = (root / "var/backups/kiosk").glob("before-upgrade-*.db")
    assert mode(backup) == 0o640
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1][0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()

    install(root, "--uninstall")
    assert not (root / "opt/kiosk").exists()
    assert not (root / "usr/local/bin/kiosk").is_symlink()
    for name in FILES:
        if not name.startswith("etc/kiosk/"):
            assert not (root / name).exists(), f"--uninstall left {name}"
    assert config.read_bytes() == edited
    assert (root / "etc/kiosk/site-code.key").read_bytes() == key
    assert ledger.is_file() and backup.is_file()


def test_a_wrong_option_is_bad_usage_and_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(INSTALL), "--root", str(tmp_path / "root"), "--no-such-option"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--no-such-option" in done.stderr
    assert not (tmp_path / "root").exists()


def test_tmpfiles_makes_the_state_and_runtime_folders_as_the_daemons_unit_does() -> None:
    """The folders exist, owned and moded as kiosk.service would make them, before it starts."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "systemd/kiosk.service")
    service = unit["Service"]
    lines = (ROOT / "systemd/kiosk.tmpfiles").read_text().splitlines()
    rows = {f[1]: f for f in (line.split() for line in lines) if f and not f[0].startswith("#")}
    user = (service["User"], service["Group"])
    wanted = {
        f"/var/lib/{service['StateDirectory']}": service["StateDirectoryMode"],
        f"/run/{service['RuntimeDirectory']}": service["RuntimeDirectoryMode"],
        "/var/backups/kiosk": "0750",
    }
    for path, folder_mode in wanted.items():
        assert path in rows, f"kiosk.tmpfiles does not make {path}"
        kind, _path, got_mode, owner, group = rows[path][:5]
        assert (kind, got_mode, (owner, group)) == ("d", folder_mode, user), rows[path]


def test_an_upgrade_over_a_damaged_ledger_stops_in_one_line(tmp_path: Path, wheels: Path) -> None:
    """The backup comes first: a ledger that cannot be copied stops the upgrade, untouched."""
    root = tmp_path / "root"
    install(root, "--wheels", str(wheels))
    ledger = root / "var/lib/kiosk/ledger.db"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"this is not a ledger" * 100)
    kiosk = root / VENV.lstrip("/") / "bin/kiosk"
    before = kiosk.stat().st_mtime_ns

    done = install(root, "--wheels", str(wheels), code=1)

    (line,) = done.stderr.splitlines()
    assert line.startswith("install.sh: error: cannot back up the ledger"), line
    assert "/var/lib/kiosk/ledger.db" in line and "run install.sh again" in line, line
    assert ledger.read_bytes() == b"this is not a ledger" * 100
    assert not list((root / "var/backups/kiosk").glob("*.db"))
    assert kiosk.stat().st_mtime_ns == before, "the program was upgraded anyway"
