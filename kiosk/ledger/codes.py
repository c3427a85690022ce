"""Codes and lockouts: the active code digests, the entry attempts and both limiters' state.

The `codes` primary key is the digest, so "no two active codes share a
digest" is a property of the file; `add` turns a clash into CodeCollision.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from kiosk.clock import from_text, to_text
from kiosk.domain.errors import CodeCollision
from kiosk.domain.limiter import LimiterState
from kiosk.ledger.connection import LedgerConnection
from kiosk.ledger.records import CodeRow

#: The code limiter's table, and the technician PIN limiter's.
_LIMITER_TABLES = ("limiter", "pin_limiter")


class CodeStore:
    """The `codes`, `attempts`, `limiter` and `pin_limiter` tables (`ledger.codes`)."""

    def __init__(self, link: LedgerConnection) -> None:
        self._link = link

    # --- codes --------------------------------------------------------------

    def find(self, digest: str) -> CodeRow | None:
        row = self._link.one("SELECT * FROM codes WHERE digest = ?", (digest,))
        return CodeRow(row["digest"], row["parcel_id"], row["role"]) if row else None

    def of_parcel(self, parcel_id: str) -> list[CodeRow]:
        rows = self._link.query(
            "SELECT * FROM codes WHERE parcel_id = ? ORDER BY role", (parcel_id,)
        )
        return [CodeRow(r["digest"], r["parcel_id"], r["role"]) for r in rows]

    def add(self, digest: str, parcel_id: str, role: str) -> None:
        try:
            self._link.write(
                "INSERT INTO codes (digest, parcel_id, role) VALUES (?, ?, ?)",
                (digest, parcel_id, role),
            )
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname != "SQLITE_CONSTRAINT_PRIMARYKEY":
                raise  # e.g. an unknown parcel (foreign key): not a collision
            raise CodeCollision(role=role) from None

    def drop(self, parcel_id: str, *roles: str) -> None:
        """Delete a parcel's codes of these roles (all of its codes when none is named)."""
        if roles:
            marks = ", ".join("?" for _ in roles)
            self._link.write(
                f"DELETE FROM codes WHERE parcel_id = ? AND role IN ({marks})", (parcel_id, *roles)
            )
        else:
            self._link.write("DELETE FROM codes WHERE parcel_id = ?", (parcel_id,))

    # --- the code-entry limiters --------------------------------------------

    def limiter(self, table: str = "limiter") -> LimiterState:
        """The code limiter's state (or, with table="pin_limiter", the PIN limiter's)."""
        if table not in _LIMITER_TABLES:
            raise ValueError(table)
        row = self._link.one(f"SELECT * FROM {table} WHERE id = 1")
        if row is None:
            return LimiterState()
        until = from_text(row["locked_until"]) if row["locked_until"] else None
        return LimiterState(
            row["consecutive"],
            row["lockouts"],
            until,
            row["day"],
            row["day_failures"],
            bool(row["site_locked"]),
        )

    def put_limiter(self, state: LimiterState, table: str = "limiter") -> None:
        if table not in _LIMITER_TABLES:
            raise ValueError(table)
        self._link.write(
            f"INSERT INTO {table} (id, consecutive, lockouts, locked_until, day, day_failures,"
            " site_locked) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " consecutive = excluded.consecutive, lockouts = excluded.lockouts,"
            " locked_until = excluded.locked_until, day = excluded.day,"
            " day_failures = excluded.day_failures, site_locked = excluded.site_locked",
            (
                state.consecutive,
                state.lockouts,
                to_text(state.locked_until) if state.locked_until else None,
                state.day,
                state.day_failures,
                int(state.site_locked),
            ),
        )

    def log_attempt(self, now: datetime, ok: bool, role: str | None, source: str) -> None:
        self._link.write(
            "INSERT INTO attempts (ts, ok, role, source) VALUES (?, ?, ?, ?)",
            (to_text(now), int(ok), role, source),
        )
