"""The ledger's control tables: limiters, technicians, audit chain, outbox and inbox.

A mixin of Ledger (kiosk/ledger/db.py): the same connection and the same
rule that every write runs inside `Ledger.tx()`.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlite_utils

from kiosk.clock import from_text, to_text
from kiosk.domain.errors import CodeCollision
from kiosk.domain.limiter import LimiterState
from kiosk.ledger import audit
from kiosk.ledger.records import OutboxEvent, encode_body

_LIMITER_TABLES = ("limiter", "pin_limiter")


class ControlTables:
    """Methods over the tables that are not lockers, parcels, codes or the door journal."""

    conn: sqlite3.Connection
    db: sqlite_utils.Database
    _events_written: bool

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        raise NotImplementedError

    def tx(self) -> Any:
        raise NotImplementedError

    # --- the code-entry limiter ---------------------------------------------

    def limiter(self, table: str = "limiter") -> LimiterState:
        """The code limiter's state (or, with table="pin_limiter", the PIN limiter's)."""
        if table not in _LIMITER_TABLES:
            raise ValueError(table)
        row = self._one(f"SELECT * FROM {table} WHERE id = 1")
        if row is None:
            return LimiterState()
        until = from_text(row["locked_until"]) if row["locked_until"] else None
        return LimiterState(
            row["consecutive"],
            row["lockouts"],
            until,
            row["day"],
            row["day_failures"],
            bool(row["site_locked"]),
        )

    def put_limiter(self, state: LimiterState, table: str = "limiter") -> None:
        if table not in _LIMITER_TABLES:
            raise ValueError(table)
        self._write(
            f"INSERT INTO {table} (id, consecutive, lockouts, locked_until, day, day_failures,"
            " site_locked) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " consecutive = excluded.consecutive, lockouts = excluded.lockouts,"
            " locked_until = excluded.locked_until, day = excluded.day,"
            " day_failures = excluded.day_failures, site_locked = excluded.site_locked",
            (
                state.consecutive,
                state.lockouts,
                to_text(state.locked_until) if state.locked_until else None,
                state.day,
                state.day_failures,
                int(state.site_locked),
            ),
        )

    def log_attempt(self, now: datetime, ok: bool, role: str | None, source: str) -> None:
        self._write(
            "INSERT INTO attempts (ts, ok, role, source) VALUES (?, ?, ?, ?)",
            (to_text(now), int(ok), role, source),
        )

    # --- technicians -------------------------------------------------------

    def technician_by_pin(self, pin_digest: str) -> str | None:
        row = self._one("SELECT technician_id FROM technicians WHERE pin_digest = ?", (pin_digest,))
        return row["technician_id"] if row else None

    def set_technician_pin(self, technician_id: str, pin_digest: str, now: datetime) -> None:
        try:
            self._write(
                "INSERT INTO technicians (technician_id, pin_digest, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (technician_id) DO UPDATE SET pin_digest = excluded.pin_digest,"
                " updated_at = excluded.updated_at",
                (technician_id, pin_digest, to_text(now)),
            )
        except sqlite3.IntegrityError:
            raise CodeCollision("Another technician has that PIN; choose another.") from None

    def technicians(self) -> list[dict[str, Any]]:
        """Every technician: id, created and last login (from the audit log), never the digest.

        Created is the first `technician.set_pin` row since the last
        `technician.remove` of that id (else `updated_at`, for a row the audit
        log does not cover); last login the newest `technician.login` since then.
        """
        rows = self.conn.execute(
            "WITH since AS (SELECT t.technician_id AS tid, t.updated_at AS updated,"
            " coalesce((SELECT max(id) FROM audit WHERE action = 'technician.remove'"
            " AND subject = t.technician_id), 0) AS after FROM technicians t)"
            " SELECT tid, coalesce((SELECT ts FROM audit WHERE action = 'technician.set_pin'"
            " AND subject = tid AND id > after ORDER BY id LIMIT 1), updated),"
            " (SELECT ts FROM audit WHERE action = 'technician.login' AND subject = tid"
            " AND id > after ORDER BY id DESC LIMIT 1) FROM since ORDER BY tid"
        )
        return [{"name": n, "created": c, "last_login": last} for n, c, last in rows]

    def remove_technician(self, technician_id: str) -> bool:
        """Delete a technician's row (their PIN stops working); False if there was none."""
        return (
            self._write(
                "DELETE FROM technicians WHERE technician_id = ?", (technician_id,)
            ).rowcount
            > 0
        )

    # --- audit and outbox ---------------------------------------------------

    def audit(self, now: datetime, actor: str, action: str, subject: str, **detail: Any) -> int:
        return audit.append(self.conn, to_text(now), actor, action, subject, detail)

    def doors_opened_by(self, actor_prefix: str, since: datetime) -> list[tuple[str, datetime]]:
        """(label, when) of every door seen open, at or after `since`, for an actor whose name
        starts with `actor_prefix` (the audit rows `door.opened`), oldest first."""
        rows = self.conn.execute(
            "SELECT subject, ts FROM audit WHERE action = 'door.opened' AND ts >= ?"
            " AND substr(actor, 1, ?) = ? ORDER BY id",
            (to_text(since), len(actor_prefix), actor_prefix),
        )
        return [(label, from_text(ts)) for label, ts in rows]

    def event(self, now: datetime, type_: str, body: dict[str, Any]) -> int:
        """Queue one outgoing event; its seq is the next of the site's sequence."""
        cursor = self._write(
            "INSERT INTO outbox (id, type, ts, body) VALUES (?, ?, ?, ?)",
            (str(uuid.uuid4()), type_, to_text(now), encode_body(body)),
        )
        self._events_written = True  # Ledger.tx() tells its listeners after the COMMIT
        return int(cursor.lastrowid or 0)

    def outbox(self, limit: int = 100, after_seq: int = 0) -> list[OutboxEvent]:
        # Plain tuples straight from sqlite3: this is the backlog drain's read.
        rows = self.conn.execute(
            "SELECT seq, id, type, ts, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [OutboxEvent(*row) for row in rows]

    def outbox_depth(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def ack_events(self, seqs: Iterable[int]) -> None:
        """Delete acknowledged events: one DELETE per run of consecutive seqs."""
        runs: list[tuple[int, int]] = []
        for seq in sorted(set(seqs)):
            if runs and runs[-1][1] == seq - 1:
                runs[-1] = (runs[-1][0], seq)
            else:
                runs.append((seq, seq))
        with self.tx():
            self.conn.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", runs)

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    # --- inbox of handled commands ------------------------------------------

    def inbox_result(self, command_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT result FROM inbox WHERE command_id = ?", (command_id,))
        return json.loads(row["result"]) if row else None

    def inbox_put(
        self, command_id: str, cmd: str, ok: bool, result: dict[str, Any], now: datetime
    ) -> None:
        self._write(
            "INSERT INTO inbox (command_id, received_at, cmd, ok, result) VALUES (?, ?, ?, ?, ?)",
            (command_id, to_text(now), cmd, int(ok), json.dumps(result, sort_keys=True)),
        )

    # --- audit tail, trusted time, checkpoint (read models of the layers above) ---

    def audit_tail(self, count: int) -> list[dict[str, Any]]:
        """The last `count` audit rows, oldest first."""
        rows = self.db.query(
            "SELECT id, ts, actor, action, subject, detail FROM audit ORDER BY id DESC LIMIT ?",
            (count,),
        )
        return list(reversed(list(rows)))

    def trusted_time(self) -> datetime | None:
        """The last wall-clock time the daemon's sweep recorded (None before the first)."""
        row = self._one("SELECT value FROM meta WHERE key = 'trusted_time'")
        return from_text(row["value"]) if row else None

    def set_trusted_time(self, now: datetime) -> None:
        with self.tx():
            self._write(
                "INSERT INTO meta (key, value) VALUES ('trusted_time', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (to_text(now),),
            )

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (on a clean stop)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
