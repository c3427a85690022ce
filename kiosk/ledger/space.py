"""Room for the ledger: how much it needs, and the error when its disk has less.

A full disk is not a damaged ledger: nothing is to be restored, space is to be freed.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from kiosk.domain.errors import DiskFull

MIB = 1024 * 1024
#: Room kept for the write-ahead log: SQLite checkpoints it at 1000 pages (4 MiB with
#: 4 KiB pages); twice that leaves room for a checkpoint held back by a reader.
WAL_ROOM_BYTES = 8 * MIB
#: The least counted for the ledger's own file: a new one grows into this within days.
MIN_FILE_BYTES = 1 * MIB


def is_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk (or the file's size limit) refused a write."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_FULL


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _human(size: int) -> str:
    if size >= MIB:
        return f"{size / MIB:.1f} MiB"
    return f"{size / 1024:.0f} KiB"


def needed_bytes(path: Path) -> int:
    """The ledger's files as they are (at least MIN_FILE_BYTES), plus WAL_ROOM_BYTES."""
    files = sum(_size(Path(f"{path}{suffix}")) for suffix in ("", "-wal", "-shm"))
    return max(files, MIN_FILE_BYTES) + WAL_ROOM_BYTES


def disk_full(path: str | Path) -> DiskFull:
    """The one-line DiskFull for the ledger at `path`: free space, and what it needs."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = _human(shutil.disk_usage(folder).free) + " free"
    except OSError:
        free = "free space unknown"
    need = needed_bytes(path)
    return DiskFull(
        f"the disk holding the ledger {path} is full ({free}); the ledger needs at least "
        f"{_human(need)} free ({_human(need - WAL_ROOM_BYTES)} for its files, "
        f"{_human(WAL_ROOM_BYTES)} for its write-ahead log): free space on that disk "
        "(`df -h`), or move `ledger.path` to a bigger one",
        path=str(path),
        needed_bytes=need,
    )
