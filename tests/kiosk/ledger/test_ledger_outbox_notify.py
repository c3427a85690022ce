"""Outbox listeners: told after the COMMIT of a transaction that queued an event, never before."""

import sqlite3
from datetime import UTC, datetime

import pytest

from kiosk.ledger.db import Ledger

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BODY = {"label": "A-1", "parcel_id": None, "reason": "test"}


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.open(tmp_path / "ledger.db")
    yield led
    led.close()


def committed_rows(path: str) -> int:
    """The outbox as another connection sees it: committed rows only."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        conn.close()


def test_a_listener_runs_after_the_commit_and_sees_the_row_committed(ledger):
    seen: list[tuple[bool, int]] = []
    ledger.outbox.on_committed(
        lambda: seen.append((ledger.conn.in_transaction, committed_rows(ledger.path)))
    )
    with ledger.tx():
        ledger.outbox.add(T0, "door.closed", BODY)
        with ledger.tx():  # a savepoint: nothing is told at its end
            ledger.outbox.add(T0, "door.closed", BODY)
        assert seen == []
    assert seen == [(False, 2)]  # once per commit, outside it, both rows visible to all


def test_no_call_for_a_rollback_or_a_commit_without_events(ledger):
    calls: list[int] = []
    ledger.outbox.on_committed(lambda: calls.append(1))
    with pytest.raises(RuntimeError), ledger.tx():
        ledger.outbox.add(T0, "door.closed", BODY)
        raise RuntimeError("the state change failed")
    assert ledger.outbox.depth() == 0
    with ledger.tx():
        ledger.audit.record(T0, "technician", "locker.checked", "A-1")
    ledger.outbox.ack([1])
    assert calls == []  # the rolled-back event did not leak into the next commit
    with ledger.tx():
        ledger.outbox.add(T0, "door.closed", BODY)
    assert calls == [1]


def test_a_failing_listener_leaves_the_commit_standing_and_others_told(ledger):
    calls: list[str] = []

    def broken() -> None:
        raise ValueError("listener bug")

    ledger.outbox.on_committed(broken)
    remove = ledger.outbox.on_committed(lambda: calls.append("second"))
    with ledger.tx():
        ledger.outbox.add(T0, "door.closed", BODY)
    assert calls == ["second"] and ledger.outbox.depth() == 1
    remove()
    with ledger.tx():
        ledger.outbox.add(T0, "door.closed", BODY)
    assert calls == ["second"]
