"""Ledger invariants read with plain SQL: they hold after every committed transaction.

`check_invariants(conn)` is shared by the property tests and the crash tests:
it needs nothing but a sqlite3 connection to a ledger file (the daemon's own,
or a second one opened on the file, or a copy) and raises AssertionError
naming the rows that break a rule. It reads inside one read transaction, so
the rules are checked against one snapshot of the file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from kiosk.ledger import audit

#: Parcel statuses in which the parcel is (as far as the ledger knows) inside a locker.
INSIDE = ("DELIVERED", "EXPIRED")
#: Parcel statuses that end a parcel's life at the bank: no code may outlive them.
FINAL = ("PICKED_UP", "RETURNED", "CANCELLED")


def check_invariants(conn: sqlite3.Connection) -> None:
    """Raise AssertionError listing every broken ledger invariant (one snapshot of the file)."""
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")  # deferred: a read snapshot, takes no write lock
    try:
        problems = _problems(conn)
    finally:
        if own_tx and conn.in_transaction:
            conn.execute("ROLLBACK")
    if problems:
        raise AssertionError("ledger invariants broken:\n  " + "\n  ".join(problems))


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
    return list(conn.execute(sql, params))


def _problems(conn: sqlite3.Connection) -> list[str]:
    lockers = {
        label: (status, parcel_id)
        for label, status, parcel_id in _rows(conn, "SELECT label, status, parcel_id FROM lockers")
    }
    parcels = {
        pid: (status, locker)
        for pid, status, locker in _rows(conn, "SELECT parcel_id, status, locker FROM parcels")
    }
    out: list[str] = []
    out += _one_locker_per_parcel(conn)
    out += _lockers_point_right(lockers, parcels)
    out += _inside_parcels_point_back(lockers, parcels)
    out += _codes_belong_to_live_parcels(conn)
    out += _outbox_has_no_gap(conn)
    result = audit.verify(conn)
    if not result.ok:
        out.append(f"audit chain does not verify after {result.rows} rows: {result.problem}")
    return out


def _one_locker_per_parcel(conn: sqlite3.Connection) -> list[str]:
    return [
        f"parcel {pid} is held by {count} lockers: {labels}"
        for pid, count, labels in _rows(
            conn,
            "SELECT parcel_id, count(*), group_concat(label, ', ') FROM lockers"
            " WHERE parcel_id IS NOT NULL GROUP BY parcel_id HAVING count(*) > 1",
        )
    ]


def _lockers_point_right(
    lockers: dict[str, tuple[str, str | None]], parcels: dict[str, tuple[str, str | None]]
) -> list[str]:
    out: list[str] = []
    for label, (status, pid) in sorted(lockers.items()):
        parcel = parcels.get(pid) if pid else None
        if pid and parcel is None:
            out.append(f"locker {label} ({status}) points at unknown parcel {pid}")
            continue
        if status == "AVAILABLE" and pid is not None:
            out.append(f"AVAILABLE locker {label} still names parcel {pid} ({parcel[0]})")
        elif status == "OCCUPIED":
            if parcel is None:
                out.append(f"OCCUPIED locker {label} names no parcel")
            elif parcel[0] not in INSIDE:
                out.append(f"OCCUPIED locker {label} holds parcel {pid} in status {parcel[0]}")
            elif parcel[1] != label:
                out.append(
                    f"OCCUPIED locker {label} holds parcel {pid}, whose locker is {parcel[1]}"
                )
        elif status == "RESERVED":
            if parcel is None:
                out.append(f"RESERVED locker {label} names no parcel")
            elif parcel[0] != "EXPECTED":
                out.append(f"RESERVED locker {label} is held for parcel {pid} in {parcel[0]}")
    return out


def _inside_parcels_point_back(
    lockers: dict[str, tuple[str, str | None]], parcels: dict[str, tuple[str, str | None]]
) -> list[str]:
    out: list[str] = []
    for pid, (status, label) in sorted(parcels.items()):
        if status not in INSIDE:
            continue
        locker = lockers.get(label) if label else None
        if locker is None:
            out.append(f"{status} parcel {pid} is in no known locker (locker={label!r})")
        elif locker[0] not in ("OCCUPIED", "OUT_OF_SERVICE"):
            out.append(f"{status} parcel {pid} is in locker {label}, which is {locker[0]}")
        elif locker[1] != pid:
            out.append(f"{status} parcel {pid} is in locker {label}, which names {locker[1]}")
    return out


def _codes_belong_to_live_parcels(conn: sqlite3.Connection) -> list[str]:
    out = [
        f"code ({role}) of parcel {pid} outlives the parcel ({status or 'missing'})"
        for role, pid, status in _rows(
            conn,
            "SELECT c.role, c.parcel_id, p.status FROM codes c"
            " LEFT JOIN parcels p ON p.parcel_id = c.parcel_id"
            " WHERE p.status IS NULL OR p.status IN (?, ?, ?)",
            FINAL,
        )
    ]
    out += [
        f"parcel {pid} has {count} active {role} codes"
        for pid, role, count in _rows(
            conn,
            "SELECT parcel_id, role, count(*) FROM codes GROUP BY parcel_id, role"
            " HAVING count(*) > 1",
        )
    ]
    out += [
        f"digest {digest[:8]}... is active {count} times"
        for digest, count in _rows(
            conn, "SELECT digest, count(*) FROM codes GROUP BY digest HAVING count(*) > 1"
        )
    ]
    return out


def _outbox_has_no_gap(conn: sqlite3.Connection) -> list[str]:
    low, high, count = conn.execute("SELECT min(seq), max(seq), count(*) FROM outbox").fetchone()
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    last = row[0] if row else 0
    if count == 0:
        return []  # every event acknowledged (or none yet): nothing left to compare
    out: list[str] = []
    if high - low + 1 != count:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
        missing = sorted(set(range(low, high + 1)) - set(seqs))
        out.append(f"outbox seq has gaps between {low} and {high}: missing {missing[:10]}")
    if high != last:
        out.append(f"outbox max seq {high} != sqlite_sequence {last}")
    return out
