"""A real `kiosk run` under umask 0 still makes its ledger, WAL, shm and backups 0640 at most."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon_proc import DaemonProcess, kiosk, kiosk_json, short_dir, write_config

ALLOWED = 0o640


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0 for this process and the daemon it starts: files SQLite makes would be 0666."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_ledger_wal_shm_and_backup_are_not_world_readable(tmp_path: Path, open_umask) -> None:
    state = short_dir(tmp_path)
    config = write_config(state)
    ledger = state / "ledger.db"
    assert not ledger.exists()
    with DaemonProcess(config) as daemon:
        rc, announced = kiosk_json(config, "parcels", "announce", "--size", "S")
        assert rc == 0, announced  # a write: the WAL holds it while the daemon runs
        dest = state / "backups" / "ledger-copy.db"
        dest.parent.mkdir()
        done = kiosk(config, "backup", str(dest))
        assert done.returncode == 0, done.stderr
        files = [ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm"), dest]
        for path in files:
            assert path.exists(), f"{path} is missing"
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & ~ALLOWED == 0, f"{path.name} is {oct(mode)}"
        assert daemon.terminate() == 0
