"""The one connection every ledger store shares, and its one transaction rule.

Every write runs inside `tx()`, so a state change, its audit row and its
outgoing event commit together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlite_utils

from kiosk.domain.errors import LedgerError
from kiosk.ledger.space import disk_full, is_full

log = logging.getLogger(__name__)


class LedgerConnection:
    """One open SQLite connection (autocommit mode) and the transaction helper over it."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.db = sqlite_utils.Database(conn)
        self._event_listeners: list[Callable[[], None]] = []
        self._events_written = False  # the open transaction queued an outbox row

    # --- transactions -------------------------------------------------------

    @contextlib.contextmanager
    def tx(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error. Nests with savepoints."""
        if self.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"The ledger is busy or unwritable: {exc}") from exc
        try:
            yield
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

    def write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one write; refused outside `tx()`."""
        if not self.conn.in_transaction:
            raise RuntimeError("ledger writes run only inside Ledger.tx()")
        return self.conn.execute(sql, tuple(params))

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        """The first row of a read, as a dict, or None."""
        cursor = self._read(sql, params)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else dict(zip(_keys(cursor), row, strict=True))

    def query(self, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows of a read, as dicts."""
        cursor = self._read(sql, params)
        keys = _keys(cursor)
        return (dict(zip(keys, row, strict=True)) for row in cursor)

    def _read(self, sql: str, params: Iterable[Any]) -> sqlite3.Cursor:
        # Straight to sqlite3, not sqlite-utils' `db.query()`: that wraps every read in a
        # SAVEPOINT and its RELEASE (three statements, about 25 us a read), to guard
        # against a write passed as a read, which the ledger's own SQL never does.
        if not sql.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
            raise ValueError(f"not a read: {sql[:40]!r} (use write())")
        return self.conn.execute(sql, tuple(params))

    # --- outbox notification ------------------------------------------------

    def events_written(self) -> None:
        """The open transaction queued an outbox row: tell the listeners after its COMMIT."""
        self._events_written = True

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


def _keys(cursor: sqlite3.Cursor) -> list[str]:
    keys = [column[0] for column in cursor.description]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a read with two columns of one name: {keys}")
    return keys
