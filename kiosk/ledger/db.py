"""The ledger: the bank's own SQLite file (WAL, synchronous=FULL, foreign keys, migrations).

`Ledger` opens the file and hands out one store per concern, all over one
connection and one transaction helper (kiosk/ledger/connection.py):

    ledger.parcels   lockers and parcels        (kiosk/ledger/parcels.py)
    ledger.codes     codes, attempts, limiters  (kiosk/ledger/codes.py)
    ledger.doors     the door journal           (kiosk/ledger/doors.py)
    ledger.audit     the audit chain            (kiosk/ledger/audit.py)
    ledger.outbox    outbox and inbox           (kiosk/ledger/outbox.py)
    ledger.settings  technicians, trusted time  (kiosk/ledger/settings.py)

Every write runs inside `Ledger.tx()`, so a state change, its audit row and
its outgoing event commit together or not at all.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from kiosk.domain.errors import CannotCreate, LedgerError
from kiosk.ledger.audit import AuditLog
from kiosk.ledger.codes import CodeStore
from kiosk.ledger.connection import LedgerConnection
from kiosk.ledger.doors import DoorJournal
from kiosk.ledger.files import create_private, make_private
from kiosk.ledger.migrations import migrate
from kiosk.ledger.outbox import OutboxStore
from kiosk.ledger.parcels import ParcelStore
from kiosk.ledger.settings import SettingsStore
from kiosk.ledger.space import disk_full, is_full


class Ledger:
    """One open ledger file. Not thread-safe: the daemon's loop is its only user."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._link = LedgerConnection(conn, path)
        self.conn = conn
        self.path = path
        self.db = self._link.db
        self.parcels = ParcelStore(self._link)
        self.codes = CodeStore(self._link)
        self.doors = DoorJournal(self._link)
        self.audit = AuditLog(self._link)
        self.outbox = OutboxStore(self._link)
        self.settings = SettingsStore(self._link)

    # --- opening ------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, check: bool = True) -> Ledger:
        """Open (creating if needed), check integrity, migrate."""
        text = str(path)
        if text != ":memory:":
            folder = Path(text).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CannotCreate(
                    f"cannot create the ledger's folder {folder}: {exc.strerror or exc} "
                    "(create it for the service user, or fix `ledger.path` in the config)",
                    path=text,
                ) from exc
            try:
                make_private(text)  # before SQLite makes its -wal and -shm with the file's mode
            except OSError as exc:
                raise LedgerError(
                    f"Cannot open the ledger {text}: {exc.strerror or exc}. It must be a file "
                    "the daemon's user owns (see docs/operations.md).",
                    path=text,
                ) from None
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(text, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if check:
                result = conn.execute("PRAGMA integrity_check").fetchone()[0]
                if result != "ok":
                    raise LedgerError(
                        f"The ledger {text} failed its integrity check ({result}). "
                        "Restore it from the last backup (see docs/operations.md).",
                        path=text,
                    )
            migrate(conn, text)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if is_full(exc):
                raise disk_full(text) from exc
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_CANTOPEN:
                raise CannotCreate(
                    f"cannot open or create the ledger {text}: {exc} (check that its folder "
                    "is writable by the service user, or fix `ledger.path` in the config)",
                    path=text,
                ) from exc
            raise LedgerError(
                f"Cannot open the ledger {text}: {exc}. If the file is damaged, restore it "
                "from the last backup (see docs/operations.md).",
                path=text,
            ) from exc
        except LedgerError as exc:
            if conn is not None:
                conn.close()
            exc.details.setdefault("path", text)
            raise
        return cls(conn, text)

    def close(self) -> None:
        self.conn.close()

    # --- transactions -------------------------------------------------------

    @contextlib.contextmanager
    def tx(self) -> Iterator[Ledger]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error. Nests with savepoints."""
        with self._link.tx():
            yield self

    # --- maintenance --------------------------------------------------------

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (on a clean stop)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup(self, dest: str | Path) -> None:
        """SQLite's online backup: a consistent copy while the daemon keeps running.

        `dest` is created here, private (kiosk/ledger/files.py) and never over
        an existing file (FileExistsError); a copy that fails is removed.
        """
        create_private(dest)
        try:
            target = sqlite3.connect(str(dest))
            try:
                self.conn.backup(target)
            finally:
                target.close()
        except BaseException:
            Path(dest).unlink(missing_ok=True)
            raise
