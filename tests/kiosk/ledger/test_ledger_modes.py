"""File modes: the ledger, its WAL and shared memory, and backups are never world-readable.

Whatever the umask of the process that opens the ledger: these tests run
with umask 0, under which a file created with default permissions is 0666.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.domain.errors import LedgerError
from kiosk.ledger.db import Ledger

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ALLOWED = 0o640  # read-write for the owner, read for the group, nothing for others


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(path: Path) -> None:
    assert path.exists(), f"{path} was not created"
    assert mode(path) & ~ALLOWED == 0, f"{path} is {oct(mode(path))}, wider than {oct(ALLOWED)}"


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_ledger_and_its_wal_and_shm_are_private(tmp_path, open_umask):
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    with ledger.tx():
        ledger.audit.record(NOW, "test", "write", "A-1")
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        assert_private(tmp_path / name)
    ledger.close()


def test_an_existing_world_readable_ledger_is_tightened_on_open(tmp_path, open_umask):
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    for suffix in ("", "-wal", "-shm"):
        extra = Path(f"{path}{suffix}")
        extra.touch()
        extra.chmod(0o666)
    ledger = Ledger.open(path)
    for suffix in ("", "-wal", "-shm"):
        assert_private(Path(f"{path}{suffix}"))
    ledger.close()


def test_a_backup_is_private(tmp_path, open_umask):
    ledger = Ledger.open(tmp_path / "ledger.db")
    with ledger.tx():
        ledger.audit.record(NOW, "test", "write", "A-1")
    dest = tmp_path / "copy.db"
    ledger.backup(dest)
    assert_private(dest)
    assert not Path(f"{dest}-journal").exists()
    ledger.close()


def test_a_backup_never_overwrites_a_file(tmp_path):
    ledger = Ledger.open(tmp_path / "ledger.db")
    dest = tmp_path / "copy.db"
    dest.write_text("someone else's file")
    with pytest.raises(FileExistsError):
        ledger.backup(dest)
    assert dest.read_text() == "someone else's file"
    ledger.close()


def test_a_ledger_path_that_is_a_folder_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "ledger.db"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(LedgerError, match="Cannot open the ledger"):
        Ledger.open(folder)
    assert mode(folder) == 0o755
