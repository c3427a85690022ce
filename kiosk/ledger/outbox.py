"""The outbox and the inbox: events waiting for the cloud, and the commands already handled.

`add` queues an event in the caller's transaction; `seq` is AUTOINCREMENT,
never reused and without gaps from rollbacks. A command's result is kept in
the inbox by its id, so a repeated command gets the original answer.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from kiosk.clock import to_text
from kiosk.ledger.connection import LedgerConnection
from kiosk.ledger.records import OutboxEvent, encode_body


class OutboxStore:
    """The `outbox` and `inbox` tables (`ledger.outbox`)."""

    def __init__(self, link: LedgerConnection) -> None:
        self._link = link

    # --- outbox -------------------------------------------------------------

    def add(self, now: datetime, type_: str, body: dict[str, Any]) -> int:
        """Queue one outgoing event; its seq is the next of the site's sequence."""
        cursor = self._link.write(
            "INSERT INTO outbox (id, type, ts, body) VALUES (?, ?, ?, ?)",
            (str(uuid.uuid4()), type_, to_text(now), encode_body(body)),
        )
        self._link.events_written()  # tx() tells the listeners after the COMMIT
        return int(cursor.lastrowid or 0)

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxEvent]:
        """Up to `limit` queued events after `after_seq`, oldest first."""
        # Plain tuples straight from sqlite3: this is the backlog drain's read.
        rows = self._link.conn.execute(
            "SELECT seq, id, type, ts, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [OutboxEvent(*row) for row in rows]

    def depth(self) -> int:
        return int(self._link.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def ack(self, seqs: Iterable[int]) -> None:
        """Delete acknowledged events: one DELETE per run of consecutive seqs."""
        runs: list[tuple[int, int]] = []
        for seq in sorted(set(seqs)):
            if runs and runs[-1][1] == seq - 1:
                runs[-1] = (runs[-1][0], seq)
            else:
                runs.append((seq, seq))
        with self._link.tx():
            self._link.conn.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", runs)

    def last_seq(self) -> int:
        row = self._link.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
        ).fetchone()
        return int(row[0]) if row else 0

    def on_committed(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener()` after every COMMIT that queued an event; returns its remover.

        See LedgerConnection.on_events_committed (kiosk/ledger/connection.py).
        """
        return self._link.on_events_committed(listener)

    # --- inbox of handled commands ------------------------------------------

    def inbox_result(self, command_id: str) -> dict[str, Any] | None:
        row = self._link.one("SELECT result FROM inbox WHERE command_id = ?", (command_id,))
        return json.loads(row["result"]) if row else None

    def inbox_put(
        self, command_id: str, cmd: str, ok: bool, result: dict[str, Any], now: datetime
    ) -> None:
        self._link.write(
            "INSERT INTO inbox (command_id, received_at, cmd, ok, result) VALUES (?, ?, ?, ?, ?)",
            (command_id, to_text(now), cmd, int(ok), json.dumps(result, sort_keys=True)),
        )


# --- read-only figures of a bare connection (doctor, diag, metrics) ---------


def outbox_figures(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Events waiting for the broker, and the RFC 3339 time of the oldest (None: empty)."""
    depth, oldest = conn.execute("SELECT count(*), min(ts) FROM outbox").fetchone()
    return int(depth), oldest
