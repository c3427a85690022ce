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
        """Every technician: id, created and last login (from the audit log), never the digest.

        Created is the first `technician.set_pin` row since the last
        `technician.remove` of that id (else `updated_at`, for a row the audit
        log does not cover); last login the newest `technician.login` since then.
        """
        rows = self._link.query(
            "WITH since AS (SELECT t.technician_id AS tid, t.updated_at AS updated,"
            " coalesce((SELECT max(id) FROM audit WHERE action = 'technician.remove'"
            " AND subject = t.technician_id), 0) AS after FROM technicians t)"
            " SELECT tid AS name, coalesce((SELECT ts FROM audit"
            " WHERE action = 'technician.set_pin' AND subject = tid AND id > after"
            " ORDER BY id LIMIT 1), updated) AS created,"
            " (SELECT ts FROM audit WHERE action = 'technician.login' AND subject = tid"
            " AND id > after ORDER BY id DESC LIMIT 1) AS last_login FROM since ORDER BY tid"
        )
        return [
            {"name": r["name"], "created": r["created"], "last_login": r["last_login"]}
            for r in rows
        ]

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
