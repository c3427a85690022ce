"""Migration 3 on a ledger an older kiosk wrote: the door journal gains the `reopen` kind and
the `reopened` count, and keeps every operation, open or finished, with its id."""

import sqlite3

import pytest

from kiosk.clock import from_text
from kiosk.ledger.db import Ledger
from kiosk.ledger.migrations import MIGRATIONS, _statements

STAMP = "2026-11-24T12:00:00Z"
COLUMNS = "id, kind, label, parcel_id, state, intent, actor, reason, created_at, updated_at"
OLD_OPS = [
    (1, "delivery", "A-1", "p-1", "DONE", "", "courier", "", STAMP, STAMP),
    (
        2,
        "technician",
        "A-2",
        None,
        "DONE",
        "",
        "technician",
        "door didnt_open (courier)",
        STAMP,
        STAMP,
    ),
    (3, "pickup", "A-1", "p-1", "OPEN", "", "customer", "", STAMP, STAMP),
    (4, "delivery", "A-2", "p-2", "FAILED", "doesnt_fit", "courier", "", STAMP, STAMP),
    (5, "technician", "A-2", None, "PENDING", "", "technician", "look inside", STAMP, STAMP),
]


def _schema_2_ledger(path) -> None:
    """The file a kiosk of schema 2 leaves: door operations open and finished, and the
    journal's AUTOINCREMENT counter past its last row (row 6 was removed by hand)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in MIGRATIONS[:2]:
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    for i, label in enumerate(("A-1", "A-2")):
        conn.execute(
            "INSERT INTO lockers (label, size, size_rank, sort_key, bus, unit, channel, status,"
            " updated_at) VALUES (?, 'S', 1, ?, 'gpio', 1, ?, 'AVAILABLE', ?)",
            (label, label, i, STAMP),
        )
    for parcel_id in ("p-1", "p-2"):
        conn.execute(
            "INSERT INTO parcels (parcel_id, size, status, source, created_at, updated_at)"
            " VALUES (?, 'S', 'DELIVERED', 'local', ?, ?)",
            (parcel_id, STAMP, STAMP),
        )
    marks = ", ".join("?" * 10)
    conn.executemany(f"INSERT INTO door_ops ({COLUMNS}) VALUES ({marks})", OLD_OPS)
    conn.execute(
        f"INSERT INTO door_ops ({COLUMNS}) VALUES (6, 'pickup', 'A-1', 'p-1', 'DONE', '', '',"
        " '', ?, ?)",
        (STAMP, STAMP),
    )
    conn.execute("DELETE FROM door_ops WHERE id = 6")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # schema 2 knows no reopen
        conn.execute(
            "INSERT INTO door_ops (kind, label, state, created_at, updated_at)"
            " VALUES ('reopen', 'A-1', 'PENDING', ?, ?)",
            (STAMP, STAMP),
        )
    conn.close()


def test_migration_3_keeps_open_and_finished_door_operations_and_allows_reopen(tmp_path):
    path = tmp_path / "ledger.db"
    _schema_2_ledger(path)
    ledger = Ledger.open(path)
    assert ledger.conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1][0]
    indexes = ledger.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    assert "audit_door_opened" in {name for (name,) in indexes}  # migration 4, on top
    rows = ledger.conn.execute(f"SELECT {COLUMNS}, reopened FROM door_ops ORDER BY id")
    assert [tuple(r) for r in rows] == [(*op, 0) for op in OLD_OPS]
    assert [(op.id, op.state) for op in ledger.doors.unfinished()] == [(3, "OPEN"), (5, "PENDING")]
    assert ledger.doors.unfinished_for("A-2").id == 5
    assert ledger.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert ledger.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    indexes = {r[1] for r in ledger.conn.execute("PRAGMA index_list(door_ops)")}
    assert "door_ops_unfinished" in indexes
    with ledger.tx():
        op = ledger.doors.add(
            "reopen", "A-1", "p-1", from_text(STAMP), actor="customer", reason="didnt_open"
        )
    assert (op.id, op.kind, op.reopened) == (7, "reopen", 0)  # no id is given twice
    assert ledger.doors.reopens_since_visit("A-1", "p-1", "customer", "didnt_open") == 1
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), ledger.tx():
        ledger.doors.add("bogus", "A-1", None, from_text(STAMP))
    ledger.close()
    again = Ledger.open(path)  # nothing left to migrate: the file stays as it is
    assert [op.id for op in again.doors.unfinished()] == [3, 5, 7]
    again.close()
