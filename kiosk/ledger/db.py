"""The ledger: the bank's own SQLite file (WAL, synchronous=FULL, foreign keys, migrations).

Every write method must run inside `Ledger.tx()`, so a state change, its
audit row and its outgoing event commit together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from kiosk.clock import to_text
from kiosk.domain.assignment import natural_key
from kiosk.domain.errors import (
    CannotCreate,
    CodeCollision,
    ConcurrentUpdate,
    LedgerError,
    NotFound,
)
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus
from kiosk.ledger import audit
from kiosk.ledger.control import ControlTables
from kiosk.ledger.files import create_private, make_private
from kiosk.ledger.migrations import migrate
from kiosk.ledger.records import CodeRow, DoorOp, LockerRow, ParcelRow
from kiosk.ledger.space import disk_full, is_full

log = logging.getLogger(__name__)

_LOCKER_COLUMNS = {"status", "parcel_id", "reserved_until", "needs_check", "note"}
_PARCEL_COLUMNS = {
    "status",
    "locker",
    "deliver_by",
    "delivered_at",
    "expires_at",
    "closed_at",
    "needs_check",
    "check_reason",
    "expiring_sent",
    "reminders_sent",
    "order_id",
}


def _sql_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, LockerStatus | Size) or hasattr(value, "value"):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


class Ledger(ControlTables):
    """One open ledger file. Not thread-safe: the daemon's loop is its only user."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.db = sqlite_utils.Database(conn)
        self._event_listeners: list[Callable[[], None]] = []
        self._events_written = False  # the open transaction queued an outbox row

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
        if self.conn.in_transaction:
            with self.db.atomic():
                yield self
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"The ledger is busy or unwritable: {exc}") from exc
        try:
            yield self
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._rollback()
            if is_full(exc):
                raise disk_full(self.path) from exc
            raise LedgerError(
                f"The ledger could not be written ({exc}); nothing was changed. "
                "Check free disk space.",
            ) from exc
        except BaseException:
            self._rollback()
            raise
        if self._events_written:
            self._events_written = False
            self._tell_event_listeners()

    def _rollback(self) -> None:
        self._events_written = False
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # --- outbox notification ------------------------------------------------

    def on_events_committed(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener()` after every COMMIT that wrote an outbox row; returns its remover.

        Called only once the outermost transaction has committed, never from
        inside one, so whoever reads the outbox then reads committed rows only.
        A row written in a savepoint that rolled back may still cause a call
        (one wake-up that finds nothing new); a rolled-back transaction causes
        none. A listener that raises is logged: the commit stands.
        """
        self._event_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._event_listeners.remove(listener)

        return remove

    def _tell_event_listeners(self) -> None:
        for listener in tuple(self._event_listeners):
            try:
                listener()
            except Exception:
                log.exception("an outbox listener failed; the events stay queued")

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        if not self.conn.in_transaction:
            raise RuntimeError("ledger writes run only inside Ledger.tx()")
        return self.conn.execute(sql, tuple(params))

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, tuple(params)))
        return rows[0] if rows else None

    # --- lockers ------------------------------------------------------------

    def sync_lockers(self, lockers: Iterable[Any], now: datetime) -> None:
        """Make the lockers table match config: add new ones, rewire existing, retire missing."""
        seen: set[str] = set()
        stamp = to_text(now)
        for cfg in lockers:
            seen.add(cfg.label)
            self._write(
                "INSERT INTO lockers (label, size, size_rank, sort_key, bus, unit, channel,"
                " status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'AVAILABLE', ?)"
                " ON CONFLICT (label) DO UPDATE SET size = excluded.size,"
                " size_rank = excluded.size_rank, bus = excluded.bus, unit = excluded.unit,"
                " channel = excluded.channel, in_config = 1",
                (
                    cfg.label,
                    cfg.size.value,
                    cfg.size.rank,
                    natural_key(cfg.label),
                    cfg.bus,
                    cfg.unit,
                    cfg.channel,
                    stamp,
                ),
            )
        for row in self.lockers():
            if row.label not in seen and row.in_config:
                self._write("UPDATE lockers SET in_config = 0 WHERE label = ?", (row.label,))

    def locker(self, label: str) -> LockerRow:
        row = self._one("SELECT * FROM lockers WHERE label = ?", (label,))
        if row is None:
            raise NotFound(f"There is no locker {label!r}.", label=label)
        return LockerRow.from_row(row)

    def lockers(self) -> list[LockerRow]:
        rows = self.db.query("SELECT * FROM lockers ORDER BY sort_key")
        return [LockerRow.from_row(r) for r in rows]

    def free_locker(self, min_rank: int, max_rank: int = 2) -> str | None:
        """The smallest free, checked, configured locker that fits: one indexed query."""
        row = self._one(
            "SELECT label FROM lockers WHERE status = 'AVAILABLE' AND needs_check = 0"
            " AND in_config = 1 AND size_rank BETWEEN ? AND ?"
            # a door open for someone else (a technician, say) is not free
            " AND NOT EXISTS (SELECT 1 FROM door_ops d WHERE d.label = lockers.label"
            " AND d.state IN ('PENDING', 'OPEN'))"
            " ORDER BY size_rank, sort_key LIMIT 1",
            (min_rank, max_rank),
        )
        return row["label"] if row else None

    def set_locker(self, row: LockerRow, now: datetime, **changes: Any) -> LockerRow:
        """Optimistic update: fails with ConcurrentUpdate if the row moved since `row` was read."""
        self._update("lockers", "label", row.label, row.version, _LOCKER_COLUMNS, now, changes)
        return self.locker(row.label)

    # --- parcels ------------------------------------------------------------

    def parcel(self, parcel_id: str) -> ParcelRow | None:
        row = self._one("SELECT * FROM parcels WHERE parcel_id = ?", (parcel_id,))
        return ParcelRow.from_row(row) if row else None

    def get_parcel(self, parcel_id: str) -> ParcelRow:
        found = self.parcel(parcel_id)
        if found is None:
            raise NotFound(f"There is no parcel {parcel_id!r}.", parcel_id=parcel_id)
        return found

    def parcels(
        self, since: datetime | None = None, statuses: Iterable[str] = ()
    ) -> list[ParcelRow]:
        sql, params = "SELECT * FROM parcels WHERE 1 = 1", []
        if since is not None:
            sql += " AND updated_at >= ?"
            params.append(to_text(since))
        wanted = list(statuses)
        if wanted:
            sql += f" AND status IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        rows = self.db.query(sql + " ORDER BY created_at, parcel_id", params)
        return [ParcelRow.from_row(r) for r in rows]

    def insert_parcel(
        self,
        parcel_id: str,
        order_id: str,
        size: Size,
        source: str,
        deliver_by: datetime | None,
        now: datetime,
    ) -> ParcelRow:
        stamp = to_text(now)
        self._write(
            "INSERT INTO parcels (parcel_id, order_id, size, status, source, deliver_by,"
            " created_at, updated_at) VALUES (?, ?, ?, 'EXPECTED', ?, ?, ?, ?)",
            (
                parcel_id,
                order_id,
                size.value,
                source,
                to_text(deliver_by) if deliver_by else None,
                stamp,
                stamp,
            ),
        )
        return self.get_parcel(parcel_id)

    def set_parcel(self, row: ParcelRow, now: datetime, **changes: Any) -> ParcelRow:
        self._update(
            "parcels", "parcel_id", row.parcel_id, row.version, _PARCEL_COLUMNS, now, changes
        )
        return self.get_parcel(row.parcel_id)

    def _update(
        self,
        table: str,
        key: str,
        key_value: str,
        version: int,
        allowed: set[str],
        now: datetime,
        changes: dict[str, Any],
    ) -> None:
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not updatable on {table}: {sorted(unknown)}")
        sets = ", ".join(f"{column} = ?" for column in changes)
        values = [_sql_value(v) for v in changes.values()]
        cursor = self._write(
            f"UPDATE {table} SET {sets}, version = version + 1, updated_at = ?"
            f" WHERE {key} = ? AND version = ?",
            [*values, to_text(now), key_value, version],
        )
        if cursor.rowcount != 1:
            raise ConcurrentUpdate(f"{table} {key_value} changed while it was being updated.")

    # --- codes --------------------------------------------------------------

    def find_code(self, digest: str) -> CodeRow | None:
        row = self._one("SELECT * FROM codes WHERE digest = ?", (digest,))
        return CodeRow(row["digest"], row["parcel_id"], row["role"]) if row else None

    def codes_of(self, parcel_id: str) -> list[CodeRow]:
        rows = self.db.query("SELECT * FROM codes WHERE parcel_id = ? ORDER BY role", (parcel_id,))
        return [CodeRow(r["digest"], r["parcel_id"], r["role"]) for r in rows]

    def add_code(self, digest: str, parcel_id: str, role: str) -> None:
        try:
            self._write(
                "INSERT INTO codes (digest, parcel_id, role) VALUES (?, ?, ?)",
                (digest, parcel_id, role),
            )
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname != "SQLITE_CONSTRAINT_PRIMARYKEY":
                raise  # e.g. an unknown parcel (foreign key): not a collision
            raise CodeCollision(role=role) from None

    def drop_codes(self, parcel_id: str, *roles: str) -> None:
        if roles:
            marks = ", ".join("?" for _ in roles)
            self._write(
                f"DELETE FROM codes WHERE parcel_id = ? AND role IN ({marks})", (parcel_id, *roles)
            )
        else:
            self._write("DELETE FROM codes WHERE parcel_id = ?", (parcel_id,))

    # --- the door-operation journal -----------------------------------------

    def open_op(
        self,
        kind: str,
        label: str,
        parcel_id: str | None,
        now: datetime,
        actor: str = "",
        reason: str = "",
    ) -> DoorOp:
        stamp = to_text(now)
        cursor = self._write(
            "INSERT INTO door_ops (kind, label, parcel_id, state, actor, reason, created_at,"
            " updated_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?)",
            (kind, label, parcel_id, actor, reason, stamp, stamp),
        )
        return self.op(int(cursor.lastrowid or 0))

    def op(self, op_id: int) -> DoorOp:
        row = self._one("SELECT * FROM door_ops WHERE id = ?", (op_id,))
        if row is None:
            raise NotFound(f"There is no door operation {op_id}.")
        return DoorOp.from_row(row)

    def set_op(self, op: DoorOp, now: datetime, **changes: Any) -> DoorOp:
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._write(
            f"UPDATE door_ops SET {sets}, updated_at = ? WHERE id = ?",
            [*changes.values(), to_text(now), op.id],
        )
        return self.op(op.id)

    def unfinished_ops(self) -> list[DoorOp]:
        rows = self.db.query(
            "SELECT * FROM door_ops WHERE state IN ('PENDING', 'OPEN') ORDER BY id"
        )
        return [DoorOp.from_row(r) for r in rows]

    def unfinished_op_for(self, label: str) -> DoorOp | None:
        row = self._one(
            "SELECT * FROM door_ops WHERE state IN ('PENDING', 'OPEN') AND label = ?"
            " ORDER BY id DESC LIMIT 1",
            (label,),
        )
        return DoorOp.from_row(row) if row else None

    # --- maintenance --------------------------------------------------------

    def verify_audit(self) -> audit.VerifyResult:
        return audit.verify(self.conn)

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
