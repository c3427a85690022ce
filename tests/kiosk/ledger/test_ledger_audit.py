"""The hash-chained audit log: verify passes a true chain and fails every kind of tampering."""

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.ledger import audit
from kiosk.ledger.db import Ledger

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ROWS = 6


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.open(tmp_path / "ledger.db")
    for n in range(ROWS):
        with led.tx():
            led.audit.record(
                T0 + timedelta(minutes=n), "technician", "locker.checked", f"A-{n}", n=n
            )
    yield led
    led.close()


def tamper(led: Ledger, *statements: str) -> audit.VerifyResult:
    """Edit the file behind the ledger's back, as an attacker with the file would."""
    for sql in statements:
        led.conn.execute(sql)
    return led.audit.verify()


def test_a_true_chain_verifies(ledger):
    result = ledger.audit.verify()
    assert result == audit.VerifyResult(True, ROWS)
    first, second = ledger.conn.execute(
        "SELECT hash, prev_hash FROM audit WHERE id IN (1, 2) ORDER BY id"
    ).fetchall()
    assert ledger.conn.execute("SELECT prev_hash FROM audit WHERE id = 1").fetchone()[0] == "0" * 64
    assert second[1] == first[0]  # each row names the one before it


def test_an_empty_log_verifies(tmp_path):
    led = Ledger.open(tmp_path / "empty.db")
    assert led.audit.verify() == audit.VerifyResult(True, 0)
    led.close()


def test_row_hash_covers_every_field():
    base = (3, "2026-11-24T12:00:00.000000Z", "a", "b", "c", "{}", "0" * 64)
    digests = {audit.row_hash(*base)}
    for index in range(len(base)):
        changed = list(base)
        changed[index] = changed[index] + 1 if index == 0 else changed[index] + "x"
        digests.add(audit.row_hash(*changed))
    assert len(digests) == len(base) + 1


def test_an_edited_detail_fails(ledger):
    result = tamper(ledger, "UPDATE audit SET detail = '{\"n\":99}' WHERE id = 3")
    assert not result.ok and "row 3" in result.problem and result.rows == 2


def test_an_edited_actor_fails_even_when_the_detail_is_untouched(ledger):
    assert not tamper(ledger, "UPDATE audit SET actor = 'cloud' WHERE id = 5").ok


def test_a_removed_middle_row_fails(ledger):
    result = tamper(ledger, "DELETE FROM audit WHERE id = 3")
    assert not result.ok and "row 3" in result.problem


def test_a_removed_last_row_fails(ledger):
    result = tamper(ledger, f"DELETE FROM audit WHERE id = {ROWS}")
    assert not result.ok and "end" in result.problem


def test_a_removed_last_row_fails_even_with_the_head_pointer_removed_too(ledger):
    result = tamper(
        ledger, f"DELETE FROM audit WHERE id = {ROWS}", "DELETE FROM meta WHERE key = 'audit_head'"
    )
    assert not result.ok


def test_two_swapped_rows_fail(ledger):
    result = tamper(
        ledger,
        "UPDATE audit SET id = -2 WHERE id = 2",
        "UPDATE audit SET id = 2 WHERE id = 4",
        "UPDATE audit SET id = 4 WHERE id = -2",
    )
    assert not result.ok and "row 2" in result.problem


def test_a_forged_row_with_a_correct_hash_but_no_head_update_fails(ledger):
    last_hash = ledger.conn.execute(f"SELECT hash FROM audit WHERE id = {ROWS}").fetchone()[0]
    fields = (
        ROWS + 1,
        "2026-11-24T13:00:00.000000Z",
        "technician",
        "door.opened",
        "A-1",
        json.dumps({}),
        last_hash,
    )
    forged = audit.row_hash(*fields)
    ledger.conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*fields, forged))
    assert not ledger.audit.verify().ok


def test_a_forged_row_slipped_in_before_the_first_fails(ledger):
    result = tamper(ledger, "INSERT INTO audit VALUES (0, 'ts', 'x', 'y', 'z', '{}', 'p', 'h')")
    assert not result.ok


def test_verify_works_on_a_copy_opened_with_plain_sqlite3(tmp_path, ledger):
    ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.db"
    shutil.copyfile(ledger.path, copy)
    conn = sqlite3.connect(copy)
    assert audit.verify(conn) == audit.VerifyResult(True, ROWS)
    conn.execute("UPDATE audit SET subject = 'B-9' WHERE id = 1")
    assert not audit.verify(conn).ok
    conn.close()
    assert ledger.audit.verify().ok  # the original is untouched


def test_audit_rows_are_only_written_inside_a_transaction(ledger):
    with pytest.raises(RuntimeError):
        audit.append(ledger.conn, "ts", "a", "b", "c", {})
    assert ledger.audit.verify().rows == ROWS


# --- verify reads one snapshot -----------------------------------------------------


def _write_before(reader: sqlite3.Connection, needle: str, write) -> list[str]:  # type: ignore[no-untyped-def]
    """Run `write` (on another connection) as `reader` starts the statement containing `needle`.

    sqlite3's trace callback fires as a statement starts, before it takes its
    read lock: the write commits exactly between verify's earlier reads and
    that statement, as the daemon's next row would on a live bank.
    """
    fired: list[str] = []

    def trace(sql: str) -> None:
        if needle in sql and not fired:
            fired.append(sql)
            write()

    reader.set_trace_callback(trace)
    return fired


def test_a_row_written_between_the_walk_and_the_head_read_is_no_tampering(ledger):
    reader = sqlite3.connect(ledger.path)

    def one_more_row() -> None:
        with ledger.tx():
            ledger.audit.record(T0 + timedelta(hours=1), "courier", "locker.reserved", "A-1")

    fired = _write_before(reader, "audit_head", one_more_row)
    result = audit.verify(reader)
    assert fired, "verify never read the head row"
    assert result == audit.VerifyResult(True, ROWS)  # the snapshot verify started on
    reader.set_trace_callback(None)
    assert audit.verify(reader) == audit.VerifyResult(True, ROWS + 1)  # the next run sees it
    reader.close()


def test_tampering_is_still_found_when_a_row_is_written_during_verify(ledger):
    ledger.conn.execute("UPDATE audit SET detail = '{\"n\":99}' WHERE id = 3")
    reader = sqlite3.connect(ledger.path)

    def one_more_row() -> None:
        with ledger.tx():
            ledger.audit.record(T0 + timedelta(hours=1), "courier", "locker.reserved", "A-1")

    _write_before(reader, "audit_head", one_more_row)
    result = audit.verify(reader)
    assert not result.ok and "row 3" in result.problem
    reader.close()


def test_verify_inside_an_open_transaction_reads_that_transaction(ledger):
    with ledger.tx():
        ledger.audit.record(T0 + timedelta(hours=1), "courier", "locker.reserved", "A-1")
        assert ledger.audit.verify() == audit.VerifyResult(True, ROWS + 1)
        assert ledger.conn.in_transaction  # verify neither committed nor ended it
    assert ledger.audit.verify() == audit.VerifyResult(True, ROWS + 1)


def _steps(led: Ledger, call) -> int:
    """SQLite VM steps `call()` takes (a count, not a time: the same on any machine)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    led.conn.set_progress_handler(count, 1)
    try:
        call()
    finally:
        led.conn.set_progress_handler(None, 1)
    return steps


def test_doors_opened_by_reads_the_openings_of_the_window_not_the_whole_log(ledger):
    # A remote door.open is rationed from this; years of other audit rows must not be
    # read while the command waits for its door (migration 4's index).
    def opened(when: datetime, actor: str, label: str) -> None:
        ledger.audit.record(when, actor, "door.opened", label)

    with ledger.tx():
        for n in range(5_000):
            ledger.audit.record(T0 - timedelta(hours=2, seconds=n), "courier:c", "door.closed", "A")
        for n in range(200):
            opened(T0 - timedelta(hours=2, seconds=n), "cloud:old", f"OLD-{n}")
        opened(T0 + timedelta(minutes=1), "cloud:j1", "A-1")
        opened(T0 + timedelta(minutes=2), "technician", "A-2")
        opened(T0 + timedelta(minutes=3), "cloud:j2", "A-3")
        opened(T0 - timedelta(minutes=10), "cloud:j0", "A-3")  # earlier: the last is minute 3
    since = T0 - timedelta(minutes=30)

    assert ledger.audit.doors_opened_by("cloud:", since, "A-3") == (3, T0 + timedelta(minutes=3))
    assert ledger.audit.doors_opened_by("cloud:", since, "A-2") == (3, None)  # not cloud's
    assert ledger.audit.doors_opened_by("cloud:", since, "OLD-1") == (3, None)  # before since
    assert ledger.audit.doors_opened_by("technician", since, "A-2") == (
        1,
        T0 + timedelta(minutes=2),
    )
    steps = _steps(ledger, lambda: ledger.audit.doors_opened_by("cloud:", since, "A-1"))
    # Three openings in the window, 5,200 rows before it: a walk of the window only.
    assert steps < 500, steps  # about 16,000 when the whole log is read
