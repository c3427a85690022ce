"""What the figures were measured on: CPU, cores, RAM, Python, SQLite and the bench's filesystem."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Filesystems that live in RAM: an fsync there costs nothing, so commit figures would flatter.
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def ram_mib() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def filesystem_of(path: str | Path) -> dict[str, str]:
    """The mount holding `path` (longest mount-point prefix in /proc/mounts): type and device."""
    target = os.path.realpath(path)
    best = {"mount": "?", "type": "unknown", "device": "?"}
    best_len = -1
    for line in _read("/proc/mounts").splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, kind = fields[0], fields[1].replace("\\040", " "), fields[2]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= best_len:
            best = {"mount": mount, "type": kind, "device": device}
            best_len = len(mount)
    return best


def disk_backed_tmp() -> str:
    """A parent directory for the bench's files that is on disk, not in RAM, if one is found."""
    for candidate in (tempfile.gettempdir(), "/var/tmp", os.getcwd()):
        usable = os.path.isdir(candidate) and os.access(candidate, os.W_OK)
        if usable and filesystem_of(candidate)["type"] not in MEMORY_FILESYSTEMS:
            return candidate
    return tempfile.gettempdir()


def describe(bench_dir: str | Path) -> dict[str, Any]:
    fs = filesystem_of(bench_dir)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_mib": ram_mib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "bench_dir": str(bench_dir),
        "filesystem": fs,
        "in_memory_fs": fs["type"] in MEMORY_FILESYSTEMS,
        "loadavg_start": load_average(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine widens every tail."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
