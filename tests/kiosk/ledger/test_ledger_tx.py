"""Ledger transactions: all-or-nothing, writes only inside tx, optimistic versions, outbox seq."""

import sqlite3
from datetime import UTC, datetime

import pytest

from kiosk.config.model import LockerConfig
from kiosk.domain.errors import CodeCollision, ConcurrentUpdate, LedgerError
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus
from kiosk.ledger.db import Ledger

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DIGEST_A, DIGEST_B, DIGEST_C = ("A" * 42 + "A", "B" * 42 + "A", "C" * 42 + "A")


class Boom(Exception):
    pass


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.open(tmp_path / "ledger.db")
    with led.tx():
        led.parcels.sync_lockers(
            [LockerConfig("A-1", Size.S, "gpio", 1, 0), LockerConfig("A-2", Size.M, "gpio", 1, 1)],
            NOW,
        )
        led.parcels.insert("P-1", "", Size.S, "cloud", None, NOW)
        led.codes.add(DIGEST_A, "P-1", "delivery")
        led.audit.record(NOW, "test", "setup", "P-1")
        led.outbox.add(NOW, "test.setup", {"n": 1})
    yield led
    led.close()


def snapshot(led: Ledger) -> dict[str, list[tuple]]:
    """Every row of every table that a flow writes, plus the outbox sequence."""
    tables = ["lockers", "parcels", "codes", "door_ops", "audit", "outbox", "limiter", "meta"]
    out = {t: led.conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    out["seq"] = [(led.outbox.last_seq(),)]
    return out


def test_an_error_inside_tx_changes_nothing_at_all(ledger):
    before = snapshot(ledger)
    with pytest.raises(Boom), ledger.tx():
        ledger.parcels.update_locker(
            ledger.parcels.locker("A-1"), NOW, status=LockerStatus.RESERVED, parcel_id="P-1"
        )
        ledger.parcels.insert("P-2", "", Size.M, "local", None, NOW)
        ledger.codes.add(DIGEST_B, "P-2", "pickup")
        ledger.doors.add("delivery", "A-1", "P-1", NOW)
        ledger.audit.record(NOW, "test", "doomed", "P-2")
        ledger.outbox.add(NOW, "parcel.doomed", {"parcel_id": "P-2", "locker": "A-1"})
        assert ledger.outbox.depth() == 2  # visible inside the transaction...
        raise Boom
    assert snapshot(ledger) == before  # ...and gone after it
    assert not ledger.conn.in_transaction
    assert ledger.audit.verify().ok and ledger.audit.verify().rows == 1


def test_a_nested_tx_that_fails_rolls_back_only_itself(ledger):
    with ledger.tx():
        ledger.audit.record(NOW, "test", "kept", "outer")
        with pytest.raises(Boom), ledger.tx():
            ledger.audit.record(NOW, "test", "dropped", "inner")
            ledger.outbox.add(NOW, "test.inner", {})
            raise Boom
        ledger.outbox.add(NOW, "test.outer", {})
    actions = [r[0] for r in ledger.conn.execute("SELECT action FROM audit ORDER BY id")]
    assert actions == ["setup", "kept"]
    assert [e.type for e in ledger.outbox.pending()] == ["test.setup", "test.outer"]
    assert [e.seq for e in ledger.outbox.pending()] == [1, 2]
    assert ledger.audit.verify().ok


def test_writes_outside_a_transaction_are_refused(ledger):
    before = snapshot(ledger)
    writes = [
        lambda: ledger.parcels.update_locker(ledger.parcels.locker("A-1"), NOW, note="x"),
        lambda: ledger.parcels.insert("P-9", "", Size.S, "cloud", None, NOW),
        lambda: ledger.codes.add(DIGEST_C, "P-1", "pickup"),
        lambda: ledger.outbox.add(NOW, "test.x", {}),
        lambda: ledger.audit.record(NOW, "test", "x", "y"),
        lambda: ledger.doors.add("technician", "A-1", None, NOW),
        lambda: ledger.codes.log_attempt(NOW, False, None, "keypad"),
    ]
    for write in writes:
        with pytest.raises(RuntimeError, match="inside"):
            write()
    assert snapshot(ledger) == before


def test_a_stale_row_is_a_concurrent_update_and_changes_nothing(ledger):
    stale = ledger.parcels.locker("A-1")
    with ledger.tx():
        fresh = ledger.parcels.update_locker(
            stale, NOW, status=LockerStatus.RESERVED, parcel_id="P-1"
        )
    assert fresh.version == stale.version + 1
    before = snapshot(ledger)
    with pytest.raises(ConcurrentUpdate) as info, ledger.tx():
        ledger.audit.record(NOW, "test", "about to clash", "A-1")
        ledger.parcels.update_locker(stale, NOW, status=LockerStatus.OUT_OF_SERVICE)
    assert info.value.code == "concurrent_update"
    assert snapshot(ledger) == before
    assert ledger.parcels.locker("A-1").status is LockerStatus.RESERVED


def test_an_unknown_column_is_refused(ledger):
    with pytest.raises(ValueError, match="size"), ledger.tx():
        ledger.parcels.update_locker(ledger.parcels.locker("A-1"), NOW, size="L")


def test_outbox_seq_rises_by_one_with_no_gap(tmp_path, ledger):
    seqs = [1]
    with ledger.tx():
        seqs.append(ledger.outbox.add(NOW, "test.a", {}))
    with pytest.raises(Boom), ledger.tx():
        ledger.outbox.add(NOW, "test.rolled_back", {})
        ledger.outbox.add(NOW, "test.rolled_back", {})
        raise Boom
    with ledger.tx():
        seqs.append(ledger.outbox.add(NOW, "test.b", {}))
    assert seqs == [1, 2, 3]
    ledger.outbox.ack([1, 2, 3])  # the broker acknowledged everything
    assert ledger.outbox.depth() == 0
    with ledger.tx():
        seqs.append(ledger.outbox.add(NOW, "test.c", {}))
    ledger.close()
    again = Ledger.open(ledger.path)
    with again.tx():
        seqs.append(again.outbox.add(NOW, "test.d", {}))
    assert seqs == [1, 2, 3, 4, 5]
    assert [(e.seq, e.type) for e in again.outbox.pending()] == [(4, "test.c"), (5, "test.d")]
    assert again.outbox.last_seq() == 5
    assert len({e.id for e in again.outbox.pending()}) == 2  # each event has its own uuid
    again.close()


def test_outbox_reads_in_order_after_a_seq(ledger):
    with ledger.tx():
        for n in range(5):
            ledger.outbox.add(NOW, "test.n", {"n": n})
    assert [e.body.get("n") for e in ledger.outbox.pending(limit=3, after_seq=2)] == [1, 2, 3]


def test_a_duplicate_digest_is_a_collision_and_nothing_is_committed(ledger):
    before = snapshot(ledger)
    with pytest.raises(CodeCollision) as info, ledger.tx():
        ledger.parcels.insert("P-2", "", Size.M, "cloud", None, NOW)
        ledger.codes.add(DIGEST_B, "P-2", "delivery")
        ledger.codes.add(DIGEST_A, "P-2", "pickup")  # P-1's delivery digest
        ledger.audit.record(NOW, "cloud", "reservation.create", "P-2")
    assert info.value.code == "code_collision" and info.value.details["role"] == "pickup"
    assert snapshot(ledger) == before
    assert ledger.parcels.find("P-2") is None and ledger.codes.find(DIGEST_B) is None


def test_backup_is_a_file_that_opens_with_the_same_rows(tmp_path, ledger):
    with ledger.tx():
        ledger.outbox.add(NOW, "test.before_backup", {"x": 1})
        ledger.audit.record(NOW, "test", "before_backup", "x")
    dest = tmp_path / "backup" / "copy.db"
    dest.parent.mkdir()
    ledger.backup(dest)
    copy = Ledger.open(dest)
    assert snapshot(copy) == snapshot(ledger)
    assert copy.audit.verify().ok and copy.audit.verify().rows == 2
    copy.close()


def test_a_full_disk_is_a_ledger_error_and_the_ledger_is_unchanged(ledger):
    pages = ledger.conn.execute("PRAGMA page_count").fetchone()[0]
    ledger.conn.execute(f"PRAGMA max_page_count = {pages}")
    before = snapshot(ledger)
    with pytest.raises(LedgerError, match="disk") as info, ledger.tx():
        ledger.parcels.update_locker(
            ledger.parcels.locker("A-1"), NOW, status=LockerStatus.OUT_OF_SERVICE
        )
        ledger.outbox.add(NOW, "locker.out_of_service", {"label": "A-1"})
        ledger.audit.record(NOW, "test", "big", "A-1", blob="x" * 200_000)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert not ledger.conn.in_transaction
    assert snapshot(ledger) == before
    ledger.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    with ledger.tx():
        assert ledger.outbox.add(NOW, "locker.out_of_service", {"label": "A-1"}) == 2
    assert ledger.audit.verify().ok


@pytest.mark.parametrize(
    "sql", ["DELETE FROM outbox", "  update lockers SET status = 'OUT_OF_SERVICE'", ""]
)
def test_a_write_passed_as_a_read_is_refused_before_it_runs(ledger, sql):
    before = snapshot(ledger)
    link = ledger._link  # the stores' one connection: reads go through one() and query()
    for read in (link.one, link.query):
        with pytest.raises(ValueError, match="not a read"):
            read(sql)
    assert snapshot(ledger) == before
