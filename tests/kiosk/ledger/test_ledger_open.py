"""Opening the ledger file: durability PRAGMAs, numbered migrations, damaged and newer files."""

import os
import sqlite3
from datetime import UTC, datetime

import pytest

from kiosk.config.model import LockerConfig
from kiosk.domain.errors import LedgerError
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.ledger.migrations import MIGRATIONS

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _filled(path) -> None:
    """A ledger with a few pages of real rows, closed (so the WAL is folded into the file)."""
    ledger = Ledger.open(path)
    with ledger.tx():
        ledger.parcels.sync_lockers(
            [LockerConfig(f"A-{i}", Size.S, "gpio", 1, i) for i in range(40)], NOW
        )
        for i in range(60):
            ledger.audit.record(NOW, "test", "filler", f"row-{i}", n=i, pad="x" * 200)
    ledger.close()


def test_open_sets_wal_full_sync_and_foreign_keys(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.db")
    pragma = lambda name: ledger.conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2  # FULL
    assert pragma("foreign_keys") == 1
    ledger.close()


def test_foreign_keys_are_enforced(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.db")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), ledger.tx():
        ledger.codes.add("d" * 43, "no-such-parcel", "delivery")  # not a "code collision"
    assert ledger.conn.execute("SELECT count(*) FROM codes").fetchone()[0] == 0
    ledger.close()


def test_migrations_are_numbered_from_one_and_set_user_version(tmp_path):
    numbers = [n for n, _ in MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))
    ledger = Ledger.open(tmp_path / "ledger.db")
    assert ledger.conn.execute("PRAGMA user_version").fetchone()[0] == numbers[-1]
    tables = {r[0] for r in ledger.conn.execute("SELECT name FROM sqlite_master")}
    assert {"lockers", "parcels", "codes", "door_ops", "audit", "outbox", "limiter"} <= tables
    ledger.close()


def test_reopening_migrates_nothing_and_keeps_rows(tmp_path):
    path = tmp_path / "ledger.db"
    _filled(path)
    ledger = Ledger.open(path)
    schema = ledger.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    ledger.close()
    again = Ledger.open(path)
    assert again.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert len(again.parcels.lockers()) == 40
    assert again.audit.verify().rows == 60
    again.close()


def test_a_file_damaged_in_the_middle_is_refused_with_advice(tmp_path):
    path = tmp_path / "ledger.db"
    _filled(path)
    size = os.path.getsize(path)
    assert size > 16 * 4096 and not os.path.exists(f"{path}-wal")
    with open(path, "r+b") as fh:  # one whole page in the middle: b-tree structure, not payload
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(b"\xff" * 4096)
    with pytest.raises(LedgerError) as info:
        Ledger.open(path)
    err = info.value
    assert err.code == "ledger_error"
    assert str(path) in err.message and err.details["path"] == str(path)
    assert "backup" in err.message  # says what to do, not only what broke


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is a text file, not a ledger\n" * 200)
    with pytest.raises(LedgerError, match="backup"):
        Ledger.open(path)
    assert path.read_bytes().startswith(b"this is a text file")  # not overwritten


def test_a_ledger_from_a_newer_kiosk_is_refused_as_a_ledger_error(tmp_path):
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {MIGRATIONS[-1][0] + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open(path)
