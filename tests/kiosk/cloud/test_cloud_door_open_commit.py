"""A remote door.open commits once before its pulse: the pending marker with the door journal.

Every commit before a pulse is an fsync the courier or support caller waits
for. The marker (so a redelivered command is answered `interrupted`, not run
twice) and the journal row (so a crash mid-pulse is reconciled) must both be
on disk before the lock is energised, but they need not be two commits. The
statements the daemon's ledger connection runs are traced (sqlite3's own
trace callback) together with the simulated lock's pulse count at that moment.
"""

from __future__ import annotations

import asyncio

from cloudrig import SITE, result_of


async def test_door_open_marker_and_journal_commit_together_before_the_pulse(rig, cloud):
    trace: list[tuple[str, int]] = []
    conn = rig.ledger.conn
    conn.set_trace_callback(lambda sql: trace.append((sql, rig.doors.pulses["A-2"])))
    try:
        jti = await asyncio.to_thread(
            cloud.send, SITE, "door.open", {"label": "A-2", "reason": "support call"}
        )
        body = await result_of(cloud, jti)
    finally:
        conn.set_trace_callback(None)
    assert body["ok"] is True and rig.doors.pulses["A-2"] == 1

    sqls = [sql for sql, _ in trace]
    marker = next(i for i, sql in enumerate(sqls) if "INTO inbox" in sql and "#pending" in sql)
    journal = next(i for i, sql in enumerate(sqls) if sql.startswith("INSERT INTO door_ops"))
    commit = next(i for i, sql in enumerate(sqls) if i > journal and sql == "COMMIT")
    between = sqls[min(marker, journal) : max(marker, journal)]
    assert "COMMIT" not in between, "the marker and the journal row were committed apart"
    assert trace[commit][1] == 0  # committed, and only then the pulse
    assert rig.ledger.outbox.inbox_result(jti + "#pending") is not None
    assert rig.ledger.outbox.inbox_result(jti) == body
