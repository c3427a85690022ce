"""Put a backup in the ledger's place: checked first, the current ledger kept beside it.

The order makes every failure leave the ledger as it was: the backup is
copied to a private temporary file beside the ledger and checked there
(SQLite's integrity check, a schema this kiosk knows, an unbroken audit
chain). Only then is the current ledger renamed aside, with its `-wal` and
`-shm` (left beside the restored file, SQLite would replay the old log into
it), and the checked copy renamed into its place, which is atomic on one
file system. The caller holds the ledger's lock (no daemon runs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kiosk.domain.errors import LedgerError
from kiosk.ledger import audit
from kiosk.ledger.db import Ledger
from kiosk.ledger.files import COMPANIONS, create_private
from kiosk.ledger.migrations import LEDGER_TABLES, known_version


@dataclass(frozen=True)
class Restored:
    ledger: Path
    kept: Path | None  # the ledger that was there before, renamed; None if there was none
    audit_rows: int


def kept_name(ledger: Path, now: datetime) -> Path:
    """Where the current ledger goes: `ledger.db.before-restore-20261206T012400Z`."""
    return ledger.with_name(f"{ledger.name}.before-restore-{now:%Y%m%dT%H%M%SZ}")


def check_backup(path: Path, name: Path | None = None) -> int:
    """The audit rows of `path` if it is a sound ledger, else LedgerError saying what is wrong.

    `name` is the file the messages name, when `path` is a copy of it: the
    operator gave the backup, and the private copy checked beside the ledger
    means nothing to them.
    """
    shown = name or path
    try:
        conn = sqlite3.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise LedgerError(
            f"the backup {shown} cannot be opened ({exc}); nothing was restored, "
            "pick another backup"
        ) from None
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise LedgerError(
                f"the backup {shown} failed its integrity check ({result}); nothing was "
                "restored, pick an older backup"
            )
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in LEDGER_TABLES if t not in tables]
        if missing:
            raise LedgerError(
                f"the backup {shown} is not a kiosk ledger (no {', '.join(missing)} table); "
                "nothing was restored, give a file `kiosk backup` wrote"
            )
        version, latest = conn.execute("PRAGMA user_version").fetchone()[0], known_version()
        if version > latest:
            raise LedgerError(
                f"the backup {shown} was written by a newer version of the kiosk (schema "
                f"{version}; this version knows up to {latest}); nothing was restored, "
                "upgrade the kiosk package first or pick a backup this version made"
            )
        chain = audit.verify(conn)
    except sqlite3.DatabaseError as exc:
        raise LedgerError(
            f"the backup {shown} is not a readable ledger ({exc}); nothing was restored, "
            "pick another backup"
        ) from None
    finally:
        conn.close()
    if not chain.ok:
        raise LedgerError(
            f"the backup {shown} is refused: audit chain BROKEN after {chain.rows} good rows "
            f"({chain.problem}); nothing was restored, pick an older backup"
        )
    return chain.rows


def restore(backup: Path, ledger: Path, now: datetime, actor: str) -> Restored:
    """Check `backup`, keep the ledger aside, install the checked copy, audit the restore."""
    if not backup.is_file():
        what = "is not a file" if backup.exists() else "does not exist"
        raise LedgerError(
            f"the backup {backup} {what}; nothing was restored, give the path of a backup "
            "file (`ls /var/backups/kiosk`)"
        )
    staging = ledger.with_name(f".{ledger.name}.restoring")
    _remove_with_companions(staging)  # a restore that was cut off before
    try:
        create_private(staging)
        shutil.copyfile(backup, staging)
        rows = check_backup(staging, name=backup)
        kept = None
        if ledger.exists():
            kept = kept_name(ledger, now)
            for suffix in ("", *COMPANIONS):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{ledger}{suffix}", f"{kept}{suffix}")
        os.replace(staging, ledger)
    finally:
        _remove_with_companions(staging)  # after the rename, only what SQLite left beside it
    _sync_folder(ledger.parent)
    restored = Ledger.open(ledger)
    try:
        with restored.tx():
            detail = {"backup": str(backup), "kept": str(kept) if kept else None}
            restored.audit.record(now, actor, "ledger.restore", str(ledger), **detail)
        restored.checkpoint()
    finally:
        restored.close()
    return Restored(ledger, kept, rows + 1)


def _remove_with_companions(path: Path) -> None:
    for suffix in ("", *COMPANIONS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
