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
            led.audit(T0 + timedelta(minutes=n), "technician", "locker.checked", f"A-{n}", n=n)
    yield led
    led.close()


def tamper(led: Ledger, *statements: str) -> audit.VerifyResult:
    """Edit the file behind the ledger's back, as an attacker with the file would."""
    for sql in statements:
        led.conn.execute(sql)
    return led.verify_audit()


def test_a_true_chain_verifies(ledger):
    result = ledger.verify_audit()
    assert result == audit.VerifyResult(True, ROWS)
    first, second = ledger.conn.execute(
        "SELECT hash, prev_hash FROM audit WHERE id IN (1, 2) ORDER BY id"
    ).fetchall()
    assert ledger.conn.execute("SELECT prev_hash FROM audit WHERE id = 1").fetchone()[0] == "0" * 64
    assert second[1] == first[0]  # each row names the one before it


def test_an_empty_log_verifies(tmp_path):
    led = Ledger.open(tmp_path / "empty.db")
    assert led.verify_audit() == audit.VerifyResult(True, 0)
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
    fields = (ROWS + 1, "2026-11-24T13:00:00.000000Z", "technician", "door.opened", "A-1",
              json.dumps({}), last_hash)  # fmt: skip
    forged = audit.row_hash(*fields)
    ledger.conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*fields, forged))
    assert not ledger.verify_audit().ok


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
    assert ledger.verify_audit().ok  # the original is untouched


def test_audit_rows_are_only_written_inside_a_transaction(ledger):
    with pytest.raises(RuntimeError):
        audit.append(ledger.conn, "ts", "a", "b", "c", {})
    assert ledger.verify_audit().rows == ROWS
