"""The door journal: one `door_ops` row per door the bank is asked to open, until it settles.

A row is PENDING before the unlock is sent and OPEN once the sensor saw the
door open; DONE, FAILED or RECOVERED end it. Crash recovery reads the rows
still PENDING or OPEN, so a command in flight at a crash is never re-run blindly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kiosk.clock import to_text
from kiosk.domain.errors import NotFound
from kiosk.ledger.connection import LedgerConnection
from kiosk.ledger.records import DoorOp


class DoorJournal:
    """The `door_ops` table (`ledger.doors`)."""

    def __init__(self, link: LedgerConnection) -> None:
        self._link = link

    def add(
        self,
        kind: str,
        label: str,
        parcel_id: str | None,
        now: datetime,
        actor: str = "",
        reason: str = "",
    ) -> DoorOp:
        """Journal a new PENDING operation (before the unlock is sent)."""
        stamp = to_text(now)
        cursor = self._link.write(
            "INSERT INTO door_ops (kind, label, parcel_id, state, actor, reason, created_at,"
            " updated_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?)",
            (kind, label, parcel_id, actor, reason, stamp, stamp),
        )
        return self.get(int(cursor.lastrowid or 0))

    def get(self, op_id: int) -> DoorOp:
        row = self._link.one("SELECT * FROM door_ops WHERE id = ?", (op_id,))
        if row is None:
            raise NotFound(f"There is no door operation {op_id}.")
        return DoorOp.from_row(row)

    def update(self, op: DoorOp, now: datetime, **changes: Any) -> DoorOp:
        sets = ", ".join(f"{column} = ?" for column in changes)
        self._link.write(
            f"UPDATE door_ops SET {sets}, updated_at = ? WHERE id = ?",
            [*changes.values(), to_text(now), op.id],
        )
        return self.get(op.id)

    def unfinished(self) -> list[DoorOp]:
        """Every operation still PENDING or OPEN, oldest first."""
        rows = self._link.query(
            "SELECT * FROM door_ops WHERE state IN ('PENDING', 'OPEN') ORDER BY id"
        )
        return [DoorOp.from_row(r) for r in rows]

    def unfinished_for(self, label: str) -> DoorOp | None:
        """The newest operation on `label` still PENDING or OPEN, if any."""
        row = self._link.one(
            "SELECT * FROM door_ops WHERE state IN ('PENDING', 'OPEN') AND label = ?"
            " ORDER BY id DESC LIMIT 1",
            (label,),
        )
        return DoorOp.from_row(row) if row else None

    def reopens_since_visit(self, label: str, parcel_id: str, actor: str, reason: str) -> int:
        """`reopen` operations of `actor` for `reason` on `label` and `parcel_id` since the
        parcel's last door operation of another kind (the visit's own), however they ended."""
        row = self._link.one(
            "SELECT COUNT(*) AS n FROM door_ops WHERE kind = 'reopen' AND parcel_id = ?"
            " AND label = ? AND actor = ? AND reason = ? AND id > (SELECT COALESCE(MAX(id), 0)"
            " FROM door_ops WHERE parcel_id = ? AND kind != 'reopen')",
            (parcel_id, label, actor, reason, parcel_id),
        )
        return int(row["n"]) if row else 0
