"""Technicians and settings: the technicians' PIN digests and the time the sweep last trusted.

The `technicians.pin_digest` column is unique, so two technicians never
share a PIN; `set_technician_pin` turns a clash into CodeCollision.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from kiosk.clock import from_text, to_text
from kiosk.domain.errors import CodeCollision
from kiosk.ledger.connection import LedgerConnection


class SettingsStore:
    """The `technicians` table and `meta.trusted_time` (`ledger.settings`)."""

    def __init__(self, link: LedgerConnection) -> None:
        self._link = link

    # --- technicians --------------------------------------------------------

    def technician_by_pin(self, pin_digest: str) -> str | None:
        row = self._link.one(
            "SELECT technician_id FROM technicians WHERE pin_digest = ?", (pin_digest,)
        )
        return row["technician_id"] if row else None

    def set_technician_pin(self, technician_id: str, pin_digest: str, now: datetime) -> None:
        try:
            self._link.write(
                "INSERT INTO technicians (technician_id, pin_digest, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (technician_id) DO UPDATE SET pin_digest = excluded.pin_digest,"
                " updated_at = excluded.updated_at",
                (technician_id, pin_digest, to_text(now)),
            )
        except sqlite3.IntegrityError:
            raise CodeCollision("Another technician has that PIN; choose another.") from None

    def technicians(self) -> list[dict[str, Any]]:
        """Every technician's id (`name`) and when its row was last written, never the digest."""
        rows = self._link.query(
            "SELECT technician_id AS name, updated_at FROM technicians ORDER BY technician_id"
        )
        return [{"name": r["name"], "updated_at": r["updated_at"]} for r in rows]

    def remove_technician(self, technician_id: str) -> bool:
        """Delete a technician's row (their PIN stops working); False if there was none."""
        cursor = self._link.write(
            "DELETE FROM technicians WHERE technician_id = ?", (technician_id,)
        )
        return cursor.rowcount > 0

    # --- trusted time -------------------------------------------------------

    def trusted_time(self) -> datetime | None:
        """The last wall-clock time the daemon's sweep recorded (None before the first)."""
        row = self._link.one("SELECT value FROM meta WHERE key = 'trusted_time'")
        return from_text(row["value"]) if row else None

    def set_trusted_time(self, now: datetime) -> None:
        with self._link.tx():
            self._link.write(
                "INSERT INTO meta (key, value) VALUES ('trusted_time', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (to_text(now),),
            )
