"""Lockers and parcels: the bank's doors as config made them, and the parcels they hold.

Both tables carry a `version`; `update_locker` and `update` write `WHERE version = ?`
and raise ConcurrentUpdate when the row moved since it was read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kiosk.clock import to_text
from kiosk.domain.assignment import natural_key
from kiosk.domain.errors import ConcurrentUpdate, NotFound
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus
from kiosk.ledger.connection import LedgerConnection
from kiosk.ledger.records import LockerRow, ParcelRow

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


class ParcelStore:
    """The `lockers` and `parcels` tables (`ledger.parcels`)."""

    def __init__(self, link: LedgerConnection) -> None:
        self._link = link

    # --- lockers ------------------------------------------------------------

    def sync_lockers(self, lockers: Iterable[Any], now: datetime) -> None:
        """Make the lockers table match config: add new ones, rewire existing, retire missing."""
        seen: set[str] = set()
        stamp = to_text(now)
        for cfg in lockers:
            seen.add(cfg.label)
            self._link.write(
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
                self._link.write("UPDATE lockers SET in_config = 0 WHERE label = ?", (row.label,))

    def locker(self, label: str) -> LockerRow:
        row = self._link.one("SELECT * FROM lockers WHERE label = ?", (label,))
        if row is None:
            raise NotFound(f"There is no locker {label!r}.", label=label)
        return LockerRow.from_row(row)

    def lockers(self) -> list[LockerRow]:
        rows = self._link.query("SELECT * FROM lockers ORDER BY sort_key")
        return [LockerRow.from_row(r) for r in rows]

    def free_locker(self, min_rank: int, max_rank: int = 2) -> str | None:
        """The smallest free, checked, configured locker that fits: one indexed query."""
        row = self._link.one(
            "SELECT label FROM lockers WHERE status = 'AVAILABLE' AND needs_check = 0"
            " AND in_config = 1 AND size_rank BETWEEN ? AND ?"
            # a door open for someone else (a technician, say) is not free
            " AND NOT EXISTS (SELECT 1 FROM door_ops d WHERE d.label = lockers.label"
            " AND d.state IN ('PENDING', 'OPEN'))"
            " ORDER BY size_rank, sort_key LIMIT 1",
            (min_rank, max_rank),
        )
        return row["label"] if row else None

    def update_locker(self, row: LockerRow, now: datetime, **changes: Any) -> LockerRow:
        """Optimistic update: fails with ConcurrentUpdate if the row moved since `row` was read."""
        self._update("lockers", "label", row.label, row.version, _LOCKER_COLUMNS, now, changes)
        return self.locker(row.label)

    # --- parcels ------------------------------------------------------------

    def find(self, parcel_id: str) -> ParcelRow | None:
        row = self._link.one("SELECT * FROM parcels WHERE parcel_id = ?", (parcel_id,))
        return ParcelRow.from_row(row) if row else None

    def get(self, parcel_id: str) -> ParcelRow:
        found = self.find(parcel_id)
        if found is None:
            raise NotFound(f"There is no parcel {parcel_id!r}.", parcel_id=parcel_id)
        return found

    def select(
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
        rows = self._link.query(sql + " ORDER BY created_at, parcel_id", params)
        return [ParcelRow.from_row(r) for r in rows]

    def insert(
        self,
        parcel_id: str,
        order_id: str,
        size: Size,
        source: str,
        deliver_by: datetime | None,
        now: datetime,
    ) -> ParcelRow:
        stamp = to_text(now)
        self._link.write(
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
        return self.get(parcel_id)

    def update(self, row: ParcelRow, now: datetime, **changes: Any) -> ParcelRow:
        """Optimistic update: fails with ConcurrentUpdate if the row moved since `row` was read."""
        self._update(
            "parcels", "parcel_id", row.parcel_id, row.version, _PARCEL_COLUMNS, now, changes
        )
        return self.get(row.parcel_id)

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
        cursor = self._link.write(
            f"UPDATE {table} SET {sets}, version = version + 1, updated_at = ?"
            f" WHERE {key} = ? AND version = ?",
            [*values, to_text(now), key_value, version],
        )
        if cursor.rowcount != 1:
            raise ConcurrentUpdate(f"{table} {key_value} changed while it was being updated.")


# --- read-only figures of a bare connection (doctor, diag, metrics) ---------


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
