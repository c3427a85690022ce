"""Checks of this machine: config, key files, serial ports, ledger, disk, clock, units."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk.config.model import KioskConfig
from kiosk.doctor.result import Check, fail, ok, skip
from kiosk.ledger import readout

#: The daemon's user (systemd/kiosk.sysusers): the one that must open the serial ports.
SERVICE_USER = "kiosk"
#: The units `kiosk doctor` expects active (systemd/).
DAEMON_UNIT = "kiosk.service"
#: The screens a bank may run: the console keypad, or the web screen and its kiosk browser.
SCREEN_UNITS = ("kiosk-ui.service", "kiosk-web.service", "kiosk-browser.service")
#: Below either, the disk of the ledger fails the check.
MIN_FREE_BYTES = 200 * 1024 * 1024
MIN_FREE_FRACTION = 0.05

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str] | None"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str] | None:
    """Run a system tool; None when it is not installed."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def key_files(config: KioskConfig) -> list[Check]:
    """Every key and certificate file the config names: there, and secrets not world-readable."""
    files: list[tuple[str, Path | None, bool]] = [
        ("keys.site_code_key_file", config.keys.site_code_key_file, True),
        ("keys.cloud_public_key_file", config.keys.cloud_public_key_file, False),
    ]
    if config.mqtt is not None:
        files += [
            ("mqtt.ca_file", config.mqtt.ca_file, False),
            ("mqtt.cert_file", config.mqtt.cert_file, False),
            ("mqtt.key_file", config.mqtt.key_file, True),
        ]
    problems: list[tuple[str, str]] = []
    seen = 0
    for key, path, secret in files:
        if path is None:
            continue
        seen += 1
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError as exc:
            problems.append(
                (f"{key}: {path} cannot be read ({exc.strerror})", f"put the file at {path}")
            )
            continue
        if secret and mode & 0o007:
            problems.append(
                (
                    f"{key}: {path} is mode {mode:04o}, readable by anyone",
                    f"chmod 0600 {path} (or 0640 with group kiosk)",
                )
            )
    if problems:
        return [
            fail("key_files", "; ".join(p for p, _ in problems), "; ".join(f for _, f in problems))
        ]
    return [ok("key_files", f"{seen} file(s) present, secrets private")]


def serial_ports(config: KioskConfig, user: str = SERVICE_USER) -> list[Check]:
    """Each serial bus's port (modbus-rtu, kerong-cu) exists and the service user may open it."""
    rtu = [b for b in config.buses if b.kind in ("modbus-rtu", "kerong-cu")]
    if not rtu:
        return [skip("serial_port", "no modbus-rtu or kerong-cu bus in the config")]
    try:
        account = pwd.getpwnam(user)
        uid = account.pw_uid
        gids = {account.pw_gid, *(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)}
        who = f"user {user}"
    except KeyError:  # no service user here (a development machine): the caller stands in
        uid, gids = os.geteuid(), {os.getegid(), *os.getgroups()}
        who = f"uid {uid} (no user {user!r} here)"
    out = []
    for bus in rtu:
        name, device = f"serial_port {bus.name}", str(bus.device)
        try:
            info = os.stat(device)
        except OSError:
            out.append(
                fail(
                    name,
                    f"{device} is not there",
                    "plug in the RS-485 adapter, check `ls -l /dev/serial/by-id/` and the "
                    f"udev rule, or fix bus {bus.name!r} `port` in the config",
                )
            )
            continue
        mode = info.st_mode
        allowed = (
            uid == 0
            or (info.st_uid == uid and mode & stat.S_IRUSR and mode & stat.S_IWUSR)
            or (info.st_gid in gids and mode & stat.S_IRGRP and mode & stat.S_IWGRP)
            or (mode & stat.S_IROTH and mode & stat.S_IWOTH)
        )
        if not allowed:
            group = _group_name(info.st_gid)
            out.append(
                fail(
                    name,
                    f"{who} cannot open {device} (mode {stat.S_IMODE(mode):04o}, group {group})",
                    f"add {user} to group {group} (`usermod -aG {group} {user}`) or fix the "
                    "udev rule (config/udev/99-kiosk-rs485.rules)",
                )
            )
        else:
            out.append(ok(name, f"{device}: {who} may open it"))
    return out


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def ledger(config: KioskConfig) -> list[Check]:
    """PRAGMA quick_check and the audit chain, on the file read-only."""
    path = Path(config.ledger.path)
    if not path.is_file():
        return [
            fail(
                "ledger",
                f"no ledger file at {path}",
                "start the daemon once (`systemctl start kiosk`): it creates the ledger; "
                "or restore a backup there",
            )
        ]
    try:
        conn = readout.open_read_only(path)
        try:
            found, known = readout.schema(conn)
            if found > known:
                return _too_new(path, found, known)
            health = readout.check(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [
            fail(
                "ledger",
                f"{path}: not a readable ledger ({exc})",
                "check the file's owner and mode; restore the last backup (operations.md)",
            )
        ]
    checks = []
    if health.quick_check == "ok":
        checks.append(ok("ledger", f"{path}: quick_check ok"))
    else:
        checks.append(
            fail(
                "ledger",
                f"{path}: quick_check: {health.quick_check}",
                "stop the daemon and restore the last backup (operations.md, Backup and restore)",
            )
        )
    if health.audit.ok:
        checks.append(ok("audit_chain", f"verified, {health.audit.rows} rows"))
    else:
        checks.append(
            fail(
                "audit_chain",
                f"BROKEN after {health.audit.rows} good rows: {health.audit.problem}",
                "the ledger was edited outside the daemon: keep this file for the "
                "investigation, tell security, restore the last good backup",
            )
        )
    return checks


def _too_new(path: Path, found: int, known: int) -> list[Check]:
    """A ledger a newer version wrote: `kiosk run` refuses it (ledger_too_new, exit 78)."""
    return [
        fail(
            "ledger",
            f"{path}: written by a newer version of the kiosk (schema {found}; this version "
            f"knows up to {known}); the daemon refuses to start on it (ledger_too_new)",
            "upgrade the program to the version that wrote it, or restore a backup made by "
            "this version (`kiosk restore FILE`, e.g. the before-upgrade copy in "
            '/var/backups/kiosk; operations.md, "Upgrade and roll back")',
        ),
        skip("audit_chain", "the ledger's schema is newer than this version reads"),
    ]


def disk(config: KioskConfig) -> list[Check]:
    """Free space where the ledger lives."""
    folder = Path(config.ledger.path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    free_mib = usage.free // (1024 * 1024)
    text = f"{free_mib} MiB free of {usage.total // (1024 * 1024)} MiB at {folder}"
    if usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_FRACTION:
        return [
            fail(
                "disk",
                text,
                "free space: `journalctl --vacuum-size=100M`, remove old backups "
                "(the ledger stops taking writes on a full disk)",
            )
        ]
    return [ok("disk", text)]


def clock(run: Runner = run_command) -> list[Check]:
    """timedatectl's NTPSynchronized."""
    done = run(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    if done is None:
        return [skip("clock", "timedatectl is not installed here")]
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[0]
        return [skip("clock", f"timedatectl cannot tell here (no systemd?): {reason}")]
    if done.stdout.strip() == "yes":
        return [ok("clock", "synchronised (NTP)")]
    return [
        fail(
            "clock",
            "not synchronised",
            "`timedatectl set-ntp true`, and let systemd-timesyncd reach an NTP "
            "server (UDP 123); codes and commands expire by the clock",
        )
    ]


def units(
    run: Runner = run_command, systemd_dir: Path = Path("/run/systemd/system")
) -> list[Check]:
    """The daemon's unit and every enabled screen unit are active; some screen is enabled."""
    if not systemd_dir.is_dir():
        return [skip("units", "systemd is not running here (a container, or another init)")]
    enabled = []
    for unit in SCREEN_UNITS:
        done = run(["systemctl", "is-enabled", unit])
        if done is None:
            return [skip("units", "systemctl is not installed here")]
        if done.stdout.strip() == "enabled":
            enabled.append(unit)
    out = [_active(run, unit) for unit in (DAEMON_UNIT, *enabled)]
    if not enabled:
        out.append(
            fail(
                "unit screen",
                "no screen unit is enabled: the panel stays dark",
                "console keypad: `systemctl enable --now kiosk-ui.service`; touch panel in a "
                "browser: `systemctl enable --now kiosk-web.service kiosk-browser.service` "
                "(docs/ui.md)",
            )
        )
    return out


def _active(run: Runner, unit: str) -> Check:
    done = run(["systemctl", "is-active", unit])
    state = (done.stdout.strip() if done is not None else "") or "unknown"
    if state == "active":
        return ok(f"unit {unit}", "active")
    return fail(
        f"unit {unit}",
        state,
        f"`systemctl enable --now {unit}`; why it stopped: `journalctl -u {unit} -n 50`",
    )
