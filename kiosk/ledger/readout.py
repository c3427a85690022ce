"""Read-only figures from a ledger connection, for `kiosk doctor`, `kiosk diag` and metrics.

The queries live with their tables (parcels, outbox, audit stores); this
module gathers them for the callers that hold a bare read-only connection.

Every function only reads. `open_read_only` opens a ledger file without
the daemon (as `kiosk audit verify --db` does); the daemon's metrics pass
its own connection instead.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kiosk.ledger import audit
from kiosk.ledger.audit import audit_tail
from kiosk.ledger.migrations import current_version, known_version
from kiosk.ledger.outbox import outbox_figures
from kiosk.ledger.parcels import locker_counts, parcel_counts

__all__ = [
    "LedgerHealth",
    "audit_tail",
    "check",
    "locker_counts",
    "open_read_only",
    "outbox_figures",
    "parcel_counts",
    "schema",
]


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """The ledger file, read-only (sqlite3.Error when it cannot be opened)."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


@dataclass(frozen=True)
class LedgerHealth:
    quick_check: str  # "ok", or SQLite's first complaint
    audit: audit.VerifyResult


def schema(conn: sqlite3.Connection) -> tuple[int, int]:
    """(the file's schema, the newest this program knows).

    A file above what this program knows was written by a newer version: this
    one must not start on it, and its tables may not be the ones read here.
    """
    return current_version(conn), known_version()


def check(conn: sqlite3.Connection) -> LedgerHealth:
    """PRAGMA quick_check and the audit chain's walk."""
    row = conn.execute("PRAGMA quick_check").fetchone()
    return LedgerHealth(str(row[0]) if row else "no answer", audit.verify(conn))
