"""Numbered schema migrations; each runs in its own transaction and bumps PRAGMA user_version."""

from __future__ import annotations

import sqlite3

from kiosk.domain.errors import LedgerTooNew

#: Tables every ledger has since schema 1: a file without one of them is not a ledger.
LEDGER_TABLES = ("meta", "lockers", "parcels", "audit", "outbox")

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

        CREATE TABLE lockers (
            label TEXT PRIMARY KEY,
            size TEXT NOT NULL CHECK (size IN ('S', 'M', 'L')),
            size_rank INTEGER NOT NULL,
            sort_key TEXT NOT NULL,
            bus TEXT NOT NULL,
            unit INTEGER NOT NULL,
            channel INTEGER NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('AVAILABLE', 'RESERVED', 'OCCUPIED', 'OUT_OF_SERVICE')),
            parcel_id TEXT REFERENCES parcels (parcel_id),
            reserved_until TEXT,
            needs_check INTEGER NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT '',
            in_config INTEGER NOT NULL DEFAULT 1,
            version INTEGER NOT NULL DEFAULT 1,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX lockers_assign ON lockers (status, needs_check, size_rank, sort_key);

        CREATE TABLE parcels (
            parcel_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL DEFAULT '',
            size TEXT NOT NULL CHECK (size IN ('S', 'M', 'L')),
            status TEXT NOT NULL CHECK (status IN
                ('EXPECTED', 'DELIVERED', 'PICKED_UP', 'EXPIRED', 'RETURNED', 'CANCELLED')),
            locker TEXT REFERENCES lockers (label),
            source TEXT NOT NULL CHECK (source IN ('cloud', 'local')),
            deliver_by TEXT,
            delivered_at TEXT,
            expires_at TEXT,
            closed_at TEXT,
            needs_check INTEGER NOT NULL DEFAULT 0,
            check_reason TEXT NOT NULL DEFAULT '',
            expiring_sent INTEGER NOT NULL DEFAULT 0,
            reminders_sent INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX parcels_status ON parcels (status, expires_at);
        CREATE INDEX parcels_updated ON parcels (updated_at);

        -- Active code digests. The primary key makes "no two active codes share
        -- a digest" a property of the file, not of our code.
        CREATE TABLE codes (
            digest TEXT PRIMARY KEY,
            parcel_id TEXT NOT NULL REFERENCES parcels (parcel_id),
            role TEXT NOT NULL CHECK (role IN ('delivery', 'pickup', 'return'))
        );
        CREATE INDEX codes_parcel ON codes (parcel_id);

        -- The door-operation journal: a row is written before every unlock pulse.
        CREATE TABLE door_ops (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('delivery', 'pickup', 'collection', 'technician')),
            label TEXT NOT NULL REFERENCES lockers (label),
            parcel_id TEXT REFERENCES parcels (parcel_id),
            state TEXT NOT NULL CHECK (state IN ('PENDING', 'OPEN', 'DONE', 'FAILED', 'RECOVERED')),
            intent TEXT NOT NULL DEFAULT '' CHECK (intent IN ('', 'doesnt_fit', 'cancel')),
            actor TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX door_ops_unfinished ON door_ops (state) WHERE state IN ('PENDING', 'OPEN');

        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            ok INTEGER NOT NULL,
            role TEXT,
            source TEXT NOT NULL
        );

        CREATE TABLE limiter (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            consecutive INTEGER NOT NULL,
            lockouts INTEGER NOT NULL,
            locked_until TEXT,
            day TEXT NOT NULL,
            day_failures INTEGER NOT NULL,
            site_locked INTEGER NOT NULL
        );

        -- Hash-chained: hash = sha256(canonical JSON of the row with prev_hash).
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );

        -- Events leave only after the broker's PUBACK. AUTOINCREMENT never reuses
        -- a seq, and a rolled-back insert gives its number back: no gaps.
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            ts TEXT NOT NULL,
            body TEXT NOT NULL
        );

        CREATE TABLE inbox (
            command_id TEXT PRIMARY KEY,
            received_at TEXT NOT NULL,
            cmd TEXT NOT NULL,
            ok INTEGER NOT NULL,
            result TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- Technicians' PINs, as digests (same HMAC as codes; the cloud's
        -- technician.set_pin sends only the digest).
        CREATE TABLE technicians (
            technician_id TEXT PRIMARY KEY,
            pin_digest TEXT NOT NULL UNIQUE,
            updated_at TEXT NOT NULL
        );

        -- PIN entry has its own limiter state, under the same rules as codes.
        CREATE TABLE pin_limiter (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            consecutive INTEGER NOT NULL,
            lockouts INTEGER NOT NULL,
            locked_until TEXT,
            day TEXT NOT NULL,
            day_failures INTEGER NOT NULL,
            site_locked INTEGER NOT NULL
        );
        """,
    ),
    (
        3,
        """
        -- A visit's reopen ("door didn't open?", "I left something") is a door
        -- operation of its own kind, no longer a technician's; `reopened` counts
        -- the times the presence sensor had an operation's door opened again
        -- (its "once" is a fact of the file, so it survives a restart). SQLite
        -- cannot change a CHECK in place: the journal is copied into a new
        -- table with the same ids, and its AUTOINCREMENT counter goes along.
        CREATE TABLE door_ops_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL
                CHECK (kind IN ('delivery', 'pickup', 'collection', 'technician', 'reopen')),
            label TEXT NOT NULL REFERENCES lockers (label),
            parcel_id TEXT REFERENCES parcels (parcel_id),
            state TEXT NOT NULL CHECK (state IN ('PENDING', 'OPEN', 'DONE', 'FAILED', 'RECOVERED')),
            intent TEXT NOT NULL DEFAULT '' CHECK (intent IN ('', 'doesnt_fit', 'cancel')),
            actor TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            reopened INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        INSERT INTO door_ops_v3
            (id, kind, label, parcel_id, state, intent, actor, reason, created_at, updated_at)
            SELECT id, kind, label, parcel_id, state, intent, actor, reason, created_at,
                   updated_at
            FROM door_ops ORDER BY id;
        DELETE FROM sqlite_sequence WHERE name = 'door_ops_v3';
        INSERT INTO sqlite_sequence (name, seq)
            SELECT 'door_ops_v3', seq FROM sqlite_sequence WHERE name = 'door_ops';
        DROP TABLE door_ops;
        ALTER TABLE door_ops_v3 RENAME TO door_ops;
        CREATE INDEX door_ops_unfinished ON door_ops (state) WHERE state IN ('PENDING', 'OPEN');
        CREATE INDEX door_ops_parcel ON door_ops (parcel_id, id);
        """,
    ),
    (
        4,
        """
        -- A remote door.open is rationed by the doors opened in the last hour
        -- (audit rows `door.opened`): found through this index, not by reading
        -- the whole log (years of rows) while the command waits for its door.
        -- Covering (action too): counted from the index alone, no row read.
        CREATE INDEX audit_door_opened ON audit (ts, actor, subject, action)
            WHERE action = 'door.opened';
        """,
    ),
]


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def known_version() -> int:
    """The newest schema this version of the program knows (a file above it is too new)."""
    return MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection, path: str = "") -> int:
    """Apply every migration newer than the file; returns the resulting version.

    A file whose schema is newer than the newest migration here was written by
    a newer version of the program (an upgrade rolled back without its
    ledger): it is refused before anything is written to it.
    """
    version = current_version(conn)
    latest = known_version()
    if version > latest:
        raise LedgerTooNew(
            f"cannot start: the ledger {path or '(in memory)'} was written by a newer version "
            f"of the kiosk (schema {version}; this version knows up to {latest}): install "
            "that version again, or restore the backup made before the upgrade "
            '(docs/operations.md, "Upgrade")',
            found=version,
            known=latest,
        )
    for number, script in MIGRATIONS:
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
                conn.execute("ROLLBACK")
            raise
        version = number
    return version


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    out: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer)
            buffer = ""
    if buffer.strip():
        out.append(buffer)
    return out
