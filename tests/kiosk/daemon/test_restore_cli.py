"""`kiosk restore FILE` and `kiosk backup --prune` as real commands on a real ledger file.

The refusal is checked against a real running `kiosk run` (it holds the
ledger's lock); the restore itself with the daemon stopped, and the daemon
started again on the restored file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from support.daemon_proc import (
    DaemonProcess,
    kiosk,
    kiosk_json,
    newer_ledger,
    short_dir,
    write_config,
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(short_dir(tmp_path))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def announce(config: Path, parcel_id: str) -> None:
    rc, data = kiosk_json(config, "parcels", "announce", "--size", "S", "--parcel-id", parcel_id)
    assert rc == 0, data


def parcel_ids(ledger: Path) -> set[str]:
    conn = sqlite3.connect(ledger.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT parcel_id FROM parcels")}
    finally:
        conn.close()


def one_error_line(done) -> str:  # type: ignore[no-untyped-def]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_restore_is_refused_while_the_daemon_runs_and_changes_nothing(config):
    state = config.parent
    ledger = state / "ledger.db"
    with DaemonProcess(config) as daemon:
        backup = state / "backup.db"
        assert kiosk(config, "backup", str(backup)).returncode == 0
        before = sorted(p.name for p in state.iterdir())
        inode = ledger.stat().st_ino

        done = kiosk(config, "restore", str(backup))
        assert done.returncode == 73, done.stdout + done.stderr
        line = one_error_line(done)
        assert "daemon is running" in line and "stop it first" in line
        assert "Nothing was changed" in line
        assert sorted(p.name for p in state.iterdir()) == before
        assert ledger.stat().st_ino == inode
        assert daemon.hello() is not None  # still serving, on the same file
        assert daemon.terminate() == 0


def test_restore_puts_the_backup_back_keeps_the_old_ledger_and_the_daemon_runs_on_it(config):
    state = config.parent
    ledger = state / "ledger.db"
    backup = state / "backup.db"
    with DaemonProcess(config) as daemon:
        announce(config, "before-backup")
        assert kiosk(config, "backup", str(backup)).returncode == 0
        announce(config, "after-backup")
        assert daemon.terminate() == 0

    done = kiosk(config, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert f"restored {ledger} from {backup}" in done.stdout
    (kept,) = state.glob("ledger.db.before-restore-*")
    assert not kept.name.endswith(("-wal", "-shm"))
    assert f"kept as {kept}" in done.stdout
    assert parcel_ids(ledger) == {"before-backup"}
    assert parcel_ids(kept) == {"before-backup", "after-backup"}  # nothing lost
    assert not list(state.glob(".ledger.db.restoring*"))
    assert oct(ledger.stat().st_mode & 0o777) == oct(0o640)

    verify = kiosk(config, "audit", "verify", "--db", str(ledger))
    assert verify.returncode == 0, verify.stderr

    with DaemonProcess(config) as daemon:
        rc, tail = kiosk_json(config, "audit", "tail", "-n", "50")
        assert rc == 0
        restores = [r for r in tail["rows"] if r["action"] == "ledger.restore"]
        assert len(restores) == 1 and restores[0]["subject"] == str(ledger)
        rc, data = kiosk_json(config, "parcels")
        assert rc == 0
        assert {p["parcel_id"] for p in data["parcels"]} == {"before-backup"}
        assert daemon.terminate() == 0


def tampered_copy(backup: Path, dest: Path) -> Path:
    dest.write_bytes(backup.read_bytes())
    conn = sqlite3.connect(dest)
    with conn:
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE id = 1")
    conn.close()
    return dest


def foreign_database(dest: Path) -> Path:
    """A sound SQLite file that is not a kiosk ledger (the wrong file picked)."""
    conn = sqlite3.connect(dest)
    with conn:
        conn.execute("CREATE TABLE photos (name TEXT)")
    conn.close()
    return dest


def newer_backup(dest: Path) -> Path:
    newer_ledger(dest)
    return dest


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda backup, d: tampered_copy(backup, d / "tampered.db"), "audit chain BROKEN"),
        (
            lambda backup, d: (d / "junk.db").write_bytes(b"not a ledger" * 100) and d / "junk.db",
            "not a readable ledger",
        ),
        (lambda backup, d: d / "missing.db", "does not exist"),
        (lambda backup, d: foreign_database(d / "photos.db"), "is not a kiosk ledger"),
        (lambda backup, d: newer_backup(d / "newer.db"), "written by a newer version"),
    ],
    ids=["tampered", "junk", "missing", "foreign", "newer"],
)
def test_a_bad_backup_is_refused_in_one_line_and_the_ledger_stays(config, tmp_path, make, says):
    state = config.parent
    ledger = state / "ledger.db"
    backup = state / "backup.db"
    with DaemonProcess(config) as daemon:
        announce(config, "p1")
        assert kiosk(config, "backup", str(backup)).returncode == 0
        assert daemon.terminate() == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bad = make(backup, elsewhere)
    before = (digest(ledger), sorted(p.name for p in state.iterdir()))

    done = kiosk(config, "restore", str(bad))
    assert done.returncode == 1, done.stdout + done.stderr
    line = one_error_line(done)
    assert says in line and "nothing was restored" in line
    # It names the file the operator gave (never the private copy checked beside the
    # ledger) and says what to do.
    assert f"the backup {bad} " in line and ".restoring" not in line, line
    assert "pick" in line or "give" in line, line
    assert (digest(ledger), sorted(p.name for p in state.iterdir())) == before


def test_backup_prune_keeps_the_newest_backup_keep_and_nothing_else_is_touched(config, tmp_path):
    config.write_text(config.read_text() + "[backup]\nkeep = 3\n")
    folder = tmp_path / "backups"
    folder.mkdir()
    old = [folder / f"ledger-2026-11-{day:02d}-031500.db" for day in range(20, 28)]
    for path in old:
        path.write_bytes(b"an old backup")
    other = folder / "ledger-by-hand.db"
    other.write_bytes(b"a copy someone made")
    with DaemonProcess(config) as daemon:
        taken = kiosk(config, "backup", "--prune", str(folder / "ledger-2026-12-06-031500.db"))
        assert taken.returncode == 0, taken.stderr
        left = sorted(p.name for p in folder.iterdir())
        assert left == [
            "ledger-2026-11-26-031500.db",
            "ledger-2026-11-27-031500.db",
            "ledger-2026-12-06-031500.db",
            "ledger-by-hand.db",
        ]
        # A backup that fails (its file exists already) prunes nothing.
        again = kiosk(config, "backup", "--prune", str(folder / "ledger-2026-11-26-031500.db"))
        assert again.returncode == 1
        assert sorted(p.name for p in folder.iterdir()) == left
        assert daemon.terminate() == 0


def test_backup_keep_defaults_to_seven(config, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    for day in range(1, 11):
        (folder / f"ledger-2026-11-{day:02d}-031500.db").write_bytes(b"old")
    with DaemonProcess(config) as daemon:
        taken = kiosk(config, "backup", "--prune", str(folder / "ledger-2026-12-06-031500.db"))
        assert taken.returncode == 0, taken.stderr
        assert len(list(folder.iterdir())) == 7
        assert (folder / "ledger-2026-12-06-031500.db").exists()
        assert daemon.terminate() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_root_restores_for_the_daemons_user(config):
    """Run as root (as the guide says), the restored ledger keeps the daemon user's ownership."""
    state = config.parent
    ledger = state / "ledger.db"
    backup = state / "backup.db"
    with DaemonProcess(config) as daemon:
        assert kiosk(config, "backup", str(backup)).returncode == 0
        assert daemon.terminate() == 0
    daemon_user = 65534  # nobody: any uid other than root's
    for path in (ledger, Path(f"{ledger}.lock")):
        os.chown(path, daemon_user, daemon_user)

    done = kiosk(config, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    beside = [p for p in state.glob("ledger.db*") if ".before-restore-" not in p.name]
    assert len(beside) >= 2  # the ledger and its lock, and any -wal or -shm left
    for path in beside:
        assert (path.stat().st_uid, path.stat().st_gid) == (daemon_user, daemon_user), path
