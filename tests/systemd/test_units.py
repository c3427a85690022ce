"""The systemd units under systemd/: valid, hardened, and consistent with config and code.

* `systemd-analyze verify` on every unit, with ExecStart's binary made to
  exist (the copy's /opt/kiosk/venv/bin/kiosk points at this venv's `kiosk`).
  verify exits 0 on unknown keys and bad values, so stderr must be empty too.
* The keys that matter, read with configparser (repeated keys kept).
* `systemd-analyze security --offline=true`: the exposure score stays under
  a bound (measured values in docs/operations.md).
* sysusers.d and tmpfiles.d files applied to a scratch root.
* The daemon and the keypad's libraries run under what MemoryDenyWriteExecute=
  and RestrictAddressFamilies= impose (emulated with seccomp, as systemd 252
  does it).
* Every `kiosk` command docs/operations.md tells an operator to type parses.

Skipped, with the reason printed, only where the systemd tools are missing
(Debian package: systemd) or, for the seccomp emulation, on a CPU it does
not know.
"""

from __future__ import annotations

import configparser
import contextlib
import ctypes
import io
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from kiosk.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
CONFIG = ROOT / "config" / "kiosk.toml"
UDEV = ROOT / "config" / "udev"
OPERATIONS = ROOT / "docs" / "operations.md"

#: The install layout every unit and docs/operations.md use.
INSTALLED_KIOSK = "/opt/kiosk/venv/bin/kiosk"
#: This venv's entry point (pip puts console scripts beside the interpreter).
VENV_KIOSK = Path(sys.executable).parent / "kiosk"

UNIT_FILES = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))

#: Highest accepted `systemd-analyze security` exposure (0 best, 10 worst).
#: Measured with systemd 252: kiosk 1.5, kiosk-ui 0.7, kiosk-backup 0.9.
MAX_EXPOSURE = {"kiosk.service": 2.0, "kiosk-ui.service": 1.2, "kiosk-backup.service": 1.5}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package: systemd); unit checks skipped")
    return path


# --- reading units ---------------------------------------------------------------


class _KeepRepeats(dict):
    """configparser stores each option as a list while reading: keep repeated keys."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and isinstance(self.get(key), list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, dict_type=_KeepRepeats, empty_lines_in_values=False
    )
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(UNITS / name, encoding="utf-8")
    return parser


def values(unit: configparser.ConfigParser, section: str, key: str) -> list[str]:
    """Every value a (possibly repeated) key was given, in order."""
    raw = unit.get(section, key, fallback=None)
    return [] if raw is None else raw.split("\n")


def one(unit: configparser.ConfigParser, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= given {len(found)} times: {found}"
    return found[0]


def words(unit: configparser.ConfigParser, section: str, key: str) -> list[str]:
    return [w for v in values(unit, section, key) for w in v.split()]


def paths(unit: configparser.ConfigParser, section: str, key: str) -> list[str]:
    """Path lists such as InaccessiblePaths=, without the optional "-" prefix."""
    return [w.lstrip("-+").split(":")[0] for w in words(unit, section, key)]


def under(path: str, folder: str) -> bool:
    return PurePosixPath(path).is_relative_to(folder)


@pytest.fixture(scope="module")
def daemon() -> configparser.ConfigParser:
    return read_unit("kiosk.service")


@pytest.fixture(scope="module")
def ui() -> configparser.ConfigParser:
    return read_unit("kiosk-ui.service")


@pytest.fixture(scope="module")
def config() -> dict:
    with CONFIG.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def unit_dir(tmp_path_factory) -> Path:
    """The units as installed, but with ExecStart's kiosk at this venv's real binary."""
    assert VENV_KIOSK.is_file(), f"no kiosk entry point at {VENV_KIOSK}; pip install -e . first"
    out = tmp_path_factory.mktemp("units")
    # kiosk-browser.service starts /usr/bin/cage, which a build machine rarely
    # has: verify checks that ExecStart's binary exists, so give it a stand-in.
    cage = shutil.which("cage") or str(out / "cage")
    if not os.path.exists(cage):
        Path(cage).write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        os.chmod(cage, 0o755)
    for name in UNIT_FILES:
        text = (UNITS / name).read_text(encoding="utf-8")
        text = text.replace(INSTALLED_KIOSK, str(VENV_KIOSK)).replace("/usr/bin/cage", cage)
        (out / name).write_text(text, encoding="utf-8")
    return out


# --- systemd-analyze -------------------------------------------------------------


@pytest.mark.parametrize("name", UNIT_FILES)
def test_systemd_analyze_verify_is_clean(name, unit_dir):
    tool = _tool("systemd-analyze")
    run = subprocess.run(
        [tool, "verify", "--man=no", str(unit_dir / name)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit_dir,
    )
    assert run.returncode == 0, (
        f"systemd-analyze verify {name}: exit {run.returncode}\n{run.stderr}"
    )
    assert run.stderr == "", f"systemd-analyze verify {name} complained:\n{run.stderr}"


def test_the_copied_units_point_at_a_real_binary(unit_dir):
    for name in UNIT_FILES:
        text = (unit_dir / name).read_text(encoding="utf-8")
        assert INSTALLED_KIOSK not in text
    assert os.access(VENV_KIOSK, os.X_OK)


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_security_exposure_stays_low(name, unit_dir):
    tool = _tool("systemd-analyze")
    run = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit_dir / name)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit_dir,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", run.stdout)
    assert found, f"no exposure level in the output of security {name}:\n{run.stdout}{run.stderr}"
    score = float(found.group(1))
    print(f"{name}: exposure {score}")
    assert score <= MAX_EXPOSURE[name], (
        f"{name}: exposure {score} is above {MAX_EXPOSURE[name]}; a hardening line was lost?\n"
        + "\n".join(line for line in run.stdout.splitlines() if line.startswith("✗"))
    )


# --- kiosk.service -----------------------------------------------------------------


def test_daemon_life_cycle(daemon):
    s = "Service"
    assert one(daemon, s, "Type") == "notify"
    assert one(daemon, s, "NotifyAccess") == "main"
    assert one(daemon, s, "WatchdogSec") == "30"
    assert one(daemon, s, "Restart") == "on-failure"
    assert one(daemon, s, "RestartSec") == "2"
    assert one(daemon, s, "KillSignal") == "SIGTERM"
    assert one(daemon, s, "ExecStart") == f"{INSTALLED_KIOSK} --config /etc/kiosk/kiosk.toml run"


def test_daemon_stop_timeout_covers_a_door_operation(daemon, config):
    """kiosk/daemon/app.py waits door_open_timeout_s * (1 + unlock_retries) + 1 s on stop."""
    policy = config.get("policy", {})
    grace = policy.get("door_open_timeout_s", 5.0) * (1 + policy.get("unlock_retries", 1)) + 1
    stop = one(daemon, "Service", "TimeoutStopSec")
    assert stop.isdigit(), f"TimeoutStopSec={stop}: give plain seconds"
    assert int(stop) >= grace + 10, f"TimeoutStopSec={stop} leaves no margin over {grace} s"


def test_daemon_orders_after_network_and_clock_but_runs_without_them(daemon):
    u = "Unit"
    assert {"network-online.target", "time-sync.target"} <= set(words(daemon, u, "After"))
    assert "network-online.target" in words(daemon, u, "Wants")
    hard = set(words(daemon, u, "Requires")) | set(words(daemon, u, "BindsTo"))
    assert not hard & {"network-online.target", "time-sync.target", "network.target"}


def test_daemon_identity_and_directories(daemon, config):
    s = "Service"
    assert one(daemon, s, "User") == "kiosk"
    assert one(daemon, s, "Group") == "kiosk"
    assert {"dialout", "gpio"} <= set(words(daemon, s, "SupplementaryGroups"))
    assert one(daemon, s, "UMask") == "0027"
    state, runtime = one(daemon, s, "StateDirectory"), one(daemon, s, "RuntimeDirectory")
    assert (state, runtime, one(daemon, s, "ConfigurationDirectory")) == ("kiosk",) * 3
    assert one(daemon, s, "StateDirectoryMode") == "0700"  # group kiosk is the keypad's too
    assert one(daemon, s, "RuntimeDirectoryMode") == "0750"  # ...which must reach the socket
    # The shipped config puts the ledger and the socket where the unit made room.
    assert PurePosixPath(config["ledger"]["path"]).parent == PurePosixPath("/var/lib", state)
    assert PurePosixPath(config["api"]["socket"]).parent == PurePosixPath("/run", runtime)


def test_lgpio_fifos_go_to_the_private_state_directory(daemon):
    s = "Service"
    assert one(daemon, s, "WorkingDirectory") == "/var/lib/kiosk"
    assert "LG_WD=/var/lib/kiosk" in words(daemon, s, "Environment")


def test_daemon_hardening(daemon):
    s = "Service"
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictRealtime": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
        "RestrictSUIDSGID": "yes",
        "RestrictNamespaces": "yes",
    }
    for key, value in expected.items():
        assert one(daemon, s, key) == value, f"{key}= should be {value!r}"
    assert "@system-service" in words(daemon, s, "SystemCallFilter")
    assert set(words(daemon, s, "RestrictAddressFamilies")) == {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_daemon_reaches_the_lock_bus_and_nothing_else(daemon):
    allowed = {tuple(v.split()) for v in values(daemon, "Service", "DeviceAllow")}
    for device in ("char-ttyUSB", "char-gpiochip", "/dev/gpiomem"):
        assert (device, "rw") in allowed, f"DeviceAllow={device} rw is missing"
    serial_and_gpio = {"char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-ttyS"}
    serial_and_gpio |= {"char-gpiochip", "/dev/gpiomem"}
    assert {entry[0] for entry in allowed} <= serial_and_gpio, allowed
    assert all(len(entry) == 2 and set(entry[1]) <= {"r", "w"} for entry in allowed), allowed


def test_daemon_may_write_the_backup_folder(daemon):
    assert "/var/backups/kiosk" in paths(daemon, "Service", "ReadWritePaths")


@pytest.mark.parametrize("name", [n for n in UNIT_FILES if n.endswith(".service")])
def test_every_service_makes_files_that_are_not_world_readable(name):
    """UMask= takes group write and everything for others off (the ledger, its WAL, backups).

    The ledger code sets 0640 itself (kiosk/ledger/files.py); the umask covers
    whatever else a service writes.
    """
    umask = one(read_unit(name), "Service", "UMask")
    assert re.fullmatch(r"0[0-7]{3}", umask), f"{name}: UMask={umask}: give four octal digits"
    assert int(umask, 8) & 0o027 == 0o027, f"{name}: UMask={umask} lets files be wider than 0640"


# --- kiosk-ui.service ------------------------------------------------------------


def test_ui_runs_on_tty1_in_place_of_the_login_prompt(ui):
    s, u = "Service", "Unit"
    assert one(ui, s, "ExecStart") == f"{INSTALLED_KIOSK} --config /etc/kiosk/kiosk.toml ui"
    assert one(ui, s, "TTYPath") == "/dev/tty1"
    assert one(ui, s, "StandardInput") == "tty"
    assert one(ui, s, "StandardOutput") == "tty"
    # Textual draws on stderr: it must reach the tty too, not the journal.
    assert one(ui, s, "StandardError") in ("tty", "inherit")
    for key in ("TTYReset", "TTYVHangup", "TTYVTDisallocate"):
        assert one(ui, s, key) == "yes"
    assert "TERM=linux" in words(ui, s, "Environment")
    assert one(ui, s, "Restart") == "always"
    assert "getty@tty1.service" in words(ui, u, "Conflicts")
    assert "kiosk.service" in words(ui, u, "After")
    assert "kiosk.service" not in words(ui, u, "Requires") + words(ui, u, "BindsTo")
    assert ("/dev/tty1", "rw") in {tuple(v.split()) for v in values(ui, s, "DeviceAllow")}


def test_ui_is_a_public_caller_with_only_the_socket_group(ui, daemon):
    s = "Service"
    assert one(ui, s, "User") == "kiosk-ui"
    # The daemon treats root and its own uid as technicians (kiosk/api/server.py).
    assert one(ui, s, "User") not in ("root", one(daemon, s, "User"))
    assert words(ui, s, "SupplementaryGroups") == [one(daemon, s, "Group")]
    assert one(ui, s, "NoNewPrivileges") == "yes"
    assert one(ui, s, "CapabilityBoundingSet") == ""


def test_ui_cannot_reach_the_ledger_or_the_keys(ui, daemon, config):
    s = "Service"
    hidden = paths(ui, s, "InaccessiblePaths")
    assert f"/var/lib/{one(daemon, s, 'StateDirectory')}" in hidden
    assert any(under(config["ledger"]["path"], h) for h in hidden)
    emptied = paths(ui, s, "TemporaryFileSystem")
    shown = paths(ui, s, "BindReadOnlyPaths") + paths(ui, s, "BindPaths")
    secrets = [config["keys"]["site_code_key_file"]]
    if "key_file" in config.get("mqtt", {}):
        secrets.append(config["mqtt"]["key_file"])
    for secret in secrets:
        covered = any(under(secret, h) for h in hidden + emptied)
        assert covered and not any(under(secret, p) for p in shown), f"{secret} is visible"
    # ...but it can read the config it is started with.
    assert "/etc/kiosk/kiosk.toml" in shown


def test_ui_has_no_network(ui):
    s = "Service"
    assert one(ui, s, "PrivateNetwork") == "yes"
    assert words(ui, s, "RestrictAddressFamilies") == ["AF_UNIX"]


# --- sysusers, tmpfiles, udev ----------------------------------------------------------


def _colon_table(path: Path) -> dict[str, list[str]]:
    rows = [line.split(":") for line in path.read_text(encoding="utf-8").splitlines()]
    return {row[0]: row for row in rows if row and row[0]}


def test_sysusers_and_tmpfiles_make_the_accounts_and_backup_folder(tmp_path):
    sysusers, tmpfiles = _tool("systemd-sysusers"), _tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    run = subprocess.run(
        [sysusers, f"--root={root}", str(UNITS / "kiosk.sysusers")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    users, groups = _colon_table(root / "etc/passwd"), _colon_table(root / "etc/group")
    assert {"kiosk", "kiosk-ui"} <= set(users)
    assert users["kiosk"][6] == users["kiosk-ui"][6] == "/usr/sbin/nologin"
    assert "gpio" in groups
    # kiosk-ui gets group kiosk from its unit only, never as a standing membership.
    assert "kiosk-ui" not in groups["kiosk"][3].split(",")
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles --root needs root to give the backup folder to kiosk")
    run = subprocess.run(
        [tmpfiles, "--create", f"--root={root}", str(UNITS / "kiosk.tmpfiles")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    backups = root / "var/backups/kiosk"
    assert backups.is_dir() and (backups.stat().st_mode & 0o777) == 0o750
    assert str(backups.stat().st_uid) == users["kiosk"][2]


_UDEV_PAIR = re.compile(r'\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')
_UDEV_KEYS = {
    "ACTION",
    "SUBSYSTEM",
    "KERNEL",
    "DRIVER",
    "ATTR",
    "ATTRS",
    "ENV",
    "SYMLINK",
    "GROUP",
    "MODE",
    "OWNER",
    "RUN",
    "TAG",
}


@pytest.mark.parametrize("name", sorted(p.name for p in UDEV.glob("*.rules")))
def test_udev_rules_are_well_formed(name):
    """udevadm verify is newer than Debian 12's systemd: check the shape of each rule here."""
    for number, line in enumerate((UDEV / name).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pos, pairs = 0, []
        while pos < len(line):
            match = _UDEV_PAIR.match(line, pos)
            assert match, f"{name}:{number}: cannot read a rule at column {pos + 1}: {line!r}"
            pairs.append(match.groups()[:4])
            pos = match.end()
        keys = {key for key, _attr, _op, _value in pairs}
        assert keys <= _UDEV_KEYS, f"{name}:{number}: unknown key(s) {keys - _UDEV_KEYS}"
        assert any(op == "==" for _k, _a, op, _v in pairs), f"{name}:{number}: matches nothing"


def test_rs485_rule_names_the_adapter_and_lowers_ftdi_latency():
    text = (UDEV / "99-kiosk-rs485.rules").read_text()
    assert 'SYMLINK+="kiosk-rs485"' in text and 'GROUP="dialout"' in text
    assert re.search(
        r'SUBSYSTEM=="usb-serial".*DRIVER=="ftdi_sio".*ATTR\{latency_timer\}="1"', text
    )


# --- the libraries under the unit's seccomp rules --------------------------------------

_SECCOMP_ARCH = {  # AUDIT_ARCH_*, and socket, mmap, mprotect, pkey_mprotect numbers
    "x86_64": (0xC000003E, 41, 9, 10, 329),
    "aarch64": (0xC00000B7, 198, 222, 226, 288),
}


def _seccomp_program():  # type: ignore[no-untyped-def]
    """systemd 252's MemoryDenyWriteExecute= and RestrictAddressFamilies= as a BPF filter.

    mmap with PROT_WRITE|PROT_EXEC, and mprotect/pkey_mprotect adding PROT_EXEC,
    fail with EPERM; socket() outside AF_UNIX/AF_INET/AF_INET6 fails with
    EAFNOSUPPORT. Everything else is allowed.
    """
    arch, nr_socket, nr_mmap, nr_mprotect, nr_pkey = _SECCOMP_ARCH[platform.machine()]
    ld, jeq, ret, and_ = 0x20, 0x15, 0x06, 0x54  # BPF_LD|W|ABS, JMP|JEQ|K, RET|K, ALU|AND|K
    allow, eperm, eafnosupport = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 97
    prot_write, prot_exec = 0x2, 0x4
    args = lambda n: 16 + 8 * n  # noqa: E731 (offset of seccomp_data.args[n], low word)
    code: list[tuple[int, str | int, str | int, int]] = [  # (op, jt, jf, k); labels resolved below
        (ld, 0, 0, 4),
        (jeq, 0, "allow", arch),
        (ld, 0, 0, 0),
        (jeq, "socket", 0, nr_socket),
        (jeq, "mmap", 0, nr_mmap),
        (jeq, "mprotect", 0, nr_mprotect),
        (jeq, "mprotect", "allow", nr_pkey),
        ("socket",),
        (ld, 0, 0, args(0)),
        (jeq, "allow", 0, socket.AF_UNIX),
        (jeq, "allow", 0, socket.AF_INET),
        (jeq, "allow", 0, socket.AF_INET6),
        (ret, 0, 0, eafnosupport),
        ("mmap",),
        (ld, 0, 0, args(2)),
        (and_, 0, 0, prot_write | prot_exec),
        (jeq, "deny", "allow", prot_write | prot_exec),
        ("mprotect",),
        (ld, 0, 0, args(2)),
        (and_, 0, 0, prot_exec),
        (jeq, "deny", "allow", prot_exec),
        ("deny",),
        (ret, 0, 0, eperm),
        ("allow",),
        (ret, 0, 0, allow),
    ]
    labels, program = {}, []
    for item in code:
        if len(item) == 1:
            labels[item[0]] = len(program)
        else:
            program.append(item)

    def target(to, at):  # type: ignore[no-untyped-def]
        return to if isinstance(to, int) else labels[to] - at - 1

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint32),
        ]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    rows = (Filter * len(program))(
        *[Filter(op, target(jt, i), target(jf, i), k) for i, (op, jt, jf, k) in enumerate(program)]
    )
    return Prog(len(program), rows), rows


_PROBE = r"""
import asyncio, ctypes, errno, mmap, socket
# The filter is on: the controls must fail.
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    raise SystemExit("write+execute memory was allowed: the filter is not on")
except PermissionError:
    pass
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
    raise SystemExit("AF_NETLINK was allowed: the filter is not on")
except OSError as exc:
    assert exc.errno == errno.EAFNOSUPPORT, exc
# glibc's getaddrinfo wants netlink for AI_ADDRCONFIG and must fall back.
assert socket.getaddrinfo("localhost", 8883, 0, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
# What the daemon and the keypad load and use.
import sqlite3, ssl, serial, pymodbus.client, gpiozero
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
key = Ed25519PrivateKey.generate()
key.public_key().verify(key.sign(b"claims"), b"claims")
mac = hmac.HMAC(b"k" * 32, hashes.SHA256()); mac.update(b"123456"); mac.finalize()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2); client.tls_set()
from textual.app import App
from textual.widgets import Input
class Keypad(App):
    def compose(self):
        yield Input(restrict=r"[0-9]*", max_length=8)
async def main():
    async with Keypad().run_test(size=(80, 24)) as pilot:
        await pilot.press("1", "2", "3")
asyncio.run(main())
print("probe ok")
"""


def _run_sandboxed(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    prog, _rows = _seccomp_program()
    libc = ctypes.CDLL(None, use_errno=True)

    def enter() -> None:  # runs in the child, between fork and exec
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, as NoNewPrivileges=yes
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")

    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, cwd=cwd, env=env, preexec_fn=enter
    )


needs_seccomp = pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() not in _SECCOMP_ARCH,
    reason="the seccomp emulation knows x86_64 and aarch64 Linux only",
)


@needs_seccomp
def test_libraries_work_without_write_execute_memory_or_netlink(tmp_path):
    run = _run_sandboxed([sys.executable, "-c", _PROBE], tmp_path)
    assert run.returncode == 0 and "probe ok" in run.stdout, run.stdout + run.stderr


@needs_seccomp
def test_a_delivery_and_a_pickup_run_under_the_daemons_seccomp_rules(tmp_path):
    run = _run_sandboxed(
        [str(VENV_KIOSK), "demo", "--headless", "--state-dir", str(tmp_path)], tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PICKED_UP" in run.stdout


# --- docs/operations.md ------------------------------------------------------------

#: Commands the docs may name before the parser has them (docs/cli.md's surface).
_PLANNED = {"ui", "cloud"}


def _documented_commands() -> list[str]:
    """`kiosk ...` lines of the sh blocks, and inline `sudo kiosk ...` spans."""
    text = OPERATIONS.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line)
            for part in re.split(r";|&&|\|", line):
                part = part.strip()
                if part.startswith(("kiosk ", "sudo kiosk ")):
                    found.append(part)
    found += re.findall(r"`(sudo kiosk [a-z][^`]*)`", text)
    return found


def test_the_operations_guide_names_commands():
    assert len(_documented_commands()) > 20


@pytest.mark.parametrize("line", _documented_commands())
def test_every_command_in_the_operations_guide_parses(line):
    argv = shlex.split(re.sub(r"\$\([^)]*\)", "X", line))
    argv = argv[argv.index("kiosk") + 1 :]
    parser = build_parser()
    known = {c for a in parser._actions if a.dest == "command" for c in a.choices}
    if argv and argv[0] in _PLANNED and argv[0] not in known:
        pytest.skip(f"`kiosk {argv[0]}` is not built yet")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 0, f"{line!r} does not parse: {err.getvalue()}"
