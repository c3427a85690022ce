"""The hash-chained audit log: append inside a transaction; verify a file with no config.

`AuditLog` is the ledger's store for it (`ledger.audit`); the module's
functions work on a bare connection, so `kiosk audit verify --db FILE`
needs no ledger and no config. The chain's head is `meta.audit_head`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.clock import from_text, to_text
from kiosk.ledger.connection import LedgerConnection

GENESIS = "0" * 64


def _canonical(row: tuple[Any, ...]) -> bytes:
    return json.dumps(list(row), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def row_hash(
    row_id: int, ts: str, actor: str, action: str, subject: str, detail: str, prev_hash: str
) -> str:
    """sha256 over the row's fields and the previous row's hash."""
    payload = _canonical((row_id, ts, actor, action, subject, detail, prev_hash))
    return hashlib.sha256(payload).hexdigest()


def append(
    conn: sqlite3.Connection, ts: str, actor: str, action: str, subject: str, detail: dict[str, Any]
) -> int:
    """Add one row to the chain. Must run inside the caller's transaction."""
    if not conn.in_transaction:
        raise RuntimeError("audit rows are written only inside a ledger transaction")
    head = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
    if head is None:
        last_id, prev = 0, GENESIS
    else:
        last_id_text, prev = head[0].split(":", 1)
        last_id = int(last_id_text)
    row_id = last_id + 1
    detail_text = json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = row_hash(row_id, ts, actor, action, subject, detail_text, prev)
    conn.execute(
        "INSERT INTO audit (id, ts, actor, action, subject, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, ts, actor, action, subject, detail_text, prev, digest),
    )
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_head', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (f"{row_id}:{digest}",),
    )
    return row_id


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    problem: str = ""


def verify(conn: sqlite3.Connection) -> VerifyResult:
    """Walk the chain: any edited, removed (inside or at the tail) or reordered row fails.

    The walk and the head row are read in one read transaction (one snapshot).
    Read apart, a row the daemon commits between them (it keeps delivering
    while an operator verifies) leaves a head ahead of the walk, which looks
    exactly like rows cut from the end: a false "BROKEN" on a healthy ledger.
    Inside a caller's open transaction, that transaction is the snapshot.
    """
    if conn.in_transaction:
        return _walk(conn)
    conn.execute("BEGIN DEFERRED")  # the snapshot is taken by the first SELECT
    try:
        return _walk(conn)
    finally:
        conn.execute("ROLLBACK")  # nothing was written: just end the read


def _walk(conn: sqlite3.Connection) -> VerifyResult:
    prev = GENESIS
    expected_id = 1
    count = 0
    cursor = conn.execute(
        "SELECT id, ts, actor, action, subject, detail, prev_hash, hash FROM audit ORDER BY id"
    )
    for row_id, ts, actor, action, subject, detail, prev_hash, digest in cursor:
        if row_id != expected_id:
            return VerifyResult(False, count, f"row {expected_id} is missing (next is {row_id})")
        if prev_hash != prev:
            return VerifyResult(False, count, f"row {row_id} does not follow row {row_id - 1}")
        if row_hash(row_id, ts, actor, action, subject, detail, prev_hash) != digest:
            return VerifyResult(False, count, f"row {row_id} was edited")
        prev = digest
        expected_id += 1
        count += 1
    head = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
    expected_head = f"{count}:{prev}" if count else None
    actual_head = head[0] if head else None
    if actual_head != expected_head:
        return VerifyResult(False, count, "rows were removed from the end of the log")
    return VerifyResult(True, count)


class AuditLog:
    """The `audit` table and its head in `meta` (`ledger.audit`)."""

    def __init__(self, link: LedgerConnection) -> None:
        self._link = link

    def record(self, now: datetime, actor: str, action: str, subject: str, **detail: Any) -> int:
        """Append one row to the chain, inside the caller's transaction; returns its id."""
        return append(self._link.conn, to_text(now), actor, action, subject, detail)

    def verify(self) -> VerifyResult:
        return verify(self._link.conn)

    def tail(self, count: int) -> list[dict[str, Any]]:
        """The last `count` audit rows, oldest first."""
        rows = self._link.query(
            "SELECT id, ts, actor, action, subject, detail FROM audit ORDER BY id DESC LIMIT ?",
            (count,),
        )
        return list(reversed(list(rows)))

    def technician_dates(self, technician_id: str) -> tuple[str | None, str | None]:
        """(created, last login) of a technician since its last `technician.remove`.

        Created is the first `technician.set_pin` row after that removal, the
        last login the newest `technician.login`; None where the log has none.
        """
        row = self._link.one(
            "WITH since AS (SELECT coalesce(max(id), 0) AS after FROM audit"
            " WHERE action = 'technician.remove' AND subject = ?)"
            " SELECT (SELECT ts FROM audit WHERE action = 'technician.set_pin'"
            " AND subject = ? AND id > since.after ORDER BY id LIMIT 1) AS created,"
            " (SELECT ts FROM audit WHERE action = 'technician.login' AND subject = ?"
            " AND id > since.after ORDER BY id DESC LIMIT 1) AS last_login FROM since",
            (technician_id,) * 3,
        )
        if row is None:  # not so: an aggregate gives one row
            return None, None
        return row["created"], row["last_login"]

    def doors_opened_by(
        self, actor_prefix: str, since: datetime, label: str
    ) -> tuple[int, datetime | None]:
        """How many doors were seen open at or after `since` for actors whose names start
        with `actor_prefix` (the audit rows `door.opened`), and the last time `label`'s
        was among them (None if it was not).

        Counted by SQLite through index audit_door_opened: the window's rows only,
        none of them parsed in Python, however many openings the window holds.
        """
        count, last = self._link.conn.execute(
            "SELECT count(*), max(CASE WHEN subject = ? THEN ts END) FROM audit"
            " WHERE action = 'door.opened' AND ts >= ? AND substr(actor, 1, ?) = ?",
            (label, to_text(since), len(actor_prefix), actor_prefix),
        ).fetchone()
        return int(count), None if last is None else from_text(last)


# --- read-only figures of a bare connection (doctor, diag, metrics) ---------


def audit_tail(conn: sqlite3.Connection, count: int) -> list[dict[str, object]]:
    """The newest `count` audit rows, oldest first (ts, actor, action, subject, detail)."""
    rows = conn.execute(
        "SELECT id, ts, actor, action, subject, detail FROM audit ORDER BY id DESC LIMIT ?",
        (count,),
    ).fetchall()
    keys = ("id", "ts", "actor", "action", "subject", "detail")
    return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]
