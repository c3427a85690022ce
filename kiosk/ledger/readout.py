"""Read-only figures from a ledger connection, for `kiosk doctor`, `kiosk diag` and metrics.

Every function only reads. `open_read_only` opens a ledger file without
the daemon (as `kiosk audit verify --db` does); the daemon's metrics pass
its own connection instead.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kiosk.ledger import audit


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """The ledger file, read-only (sqlite3.Error when it cannot be opened)."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


@dataclass(frozen=True)
class LedgerHealth:
    quick_check: str  # "ok", or SQLite's first complaint
    audit: audit.VerifyResult


def check(conn: sqlite3.Connection) -> LedgerHealth:
    """PRAGMA quick_check and the audit chain's walk."""
    row = conn.execute("PRAGMA quick_check").fetchone()
    return LedgerHealth(str(row[0]) if row else "no answer", audit.verify(conn))


def locker_counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(status, size) -> lockers the config still has (a removed locker's row is kept)."""
    rows = conn.execute(
        "SELECT status, size, count(*) FROM lockers WHERE in_config = 1 GROUP BY status, size"
    )
    return {(str(status), str(size)): int(n) for status, size, n in rows}


def parcel_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """status -> parcels."""
    rows = conn.execute("SELECT status, count(*) FROM parcels GROUP BY status")
    return {str(status): int(n) for status, n in rows}


def outbox_figures(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Events waiting for the broker, and the RFC 3339 time of the oldest (None: empty)."""
    depth, oldest = conn.execute("SELECT count(*), min(ts) FROM outbox").fetchone()
    return int(depth), oldest


def audit_tail(conn: sqlite3.Connection, count: int) -> list[dict[str, object]]:
    """The newest `count` audit rows, oldest first (ts, actor, action, subject, detail)."""
    rows = conn.execute(
        "SELECT id, ts, actor, action, subject, detail FROM audit ORDER BY id DESC LIMIT ?",
        (count,),
    ).fetchall()
    keys = ("id", "ts", "actor", "action", "subject", "detail")
    return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]
