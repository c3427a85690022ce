"""`kiosk audit verify` on a live bank: OK on every run while the daemon delivers and picks up.

The daemon is a real `kiosk run` process on a simulated board, and verify is
the real CLI in its own process, reading the file the daemon is writing. The
ledger starts with 10,000 audit rows, so each walk is long enough for the
daemon to commit rows during it. (tests/kiosk/ledger/test_ledger_audit.py
puts a write exactly between the walk and the head read; this is the same
property on the whole system.)
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.daemon_proc import DaemonProcess, kiosk, short_dir, wait_until, write_config

from kiosk.api.client import ApiClient
from kiosk.ledger.db import Ledger

SEED_ROWS = 10_000
VERIFY_RUNS = 20
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return short_dir(tmp_path)


def seed_audit(path: Path, rows: int) -> None:
    """A long, true chain, written through the ledger's own open path before the daemon starts."""
    ledger = Ledger.open(path)
    try:
        with ledger.tx():
            for n in range(rows):
                ledger.audit.record(
                    T0 + timedelta(seconds=n), "technician", "locker.checked", "A-1", n=n
                )
    finally:
        ledger.close()


def parcel_status(client: ApiClient, parcel_id: str) -> str:
    listing = client.call("parcels")["parcels"]
    return next(p["status"] for p in listing if p["parcel_id"] == parcel_id)


def wait_status(client: ApiClient, parcel_id: str, wanted: str) -> None:
    wait_until(lambda: parcel_status(client, parcel_id) == wanted, what=f"{parcel_id} {wanted}")


def deliveries_and_pickups(socket: Path, stop: threading.Event, done: list[str]) -> None:
    """Parcel after parcel through the local API (the keypad's path) until told to stop."""
    with ApiClient(str(socket)) as client:
        while not stop.is_set():
            parcel = client.call("parcels.announce", size="S")
            client.call("code.submit", code=parcel["delivery_code"])
            wait_status(client, parcel["parcel_id"], "DELIVERED")
            client.call("code.submit", code=parcel["pickup_code"])
            wait_status(client, parcel["parcel_id"], "PICKED_UP")
            done.append(parcel["parcel_id"])


def test_verify_says_ok_on_every_run_while_the_daemon_works(state: Path) -> None:
    config = write_config(state, door_close_s=0.1)
    seed_audit(state / "ledger.db", SEED_ROWS)
    with DaemonProcess(config) as daemon:
        stop, done, errors = threading.Event(), [], []

        def flows() -> None:
            try:
                deliveries_and_pickups(daemon.socket, stop, done)
            except BaseException as exc:  # reported by the test thread below
                errors.append(exc)

        worker = threading.Thread(target=flows, daemon=True)
        worker.start()
        runs, counts = [], set()
        try:
            # Verify runs until the daemon has finished flows during the loop too.
            wait_until(lambda: bool(done) or bool(errors), what="a first delivery and pickup")
            first_done = len(done)
            while len(runs) < VERIFY_RUNS or len(done) < first_done + 2:
                assert not errors, errors
                run = kiosk(config, "audit", "verify")
                runs.append(run)
                assert run.returncode == 0, f"run {len(runs)}: {run.stderr}\n{daemon.log()}"
                assert "audit chain verified" in run.stdout, run.stdout
                counts.add(run.stdout.rsplit(",", 1)[1])
        finally:
            stop.set()
            worker.join(timeout=120)
        assert not errors, errors
        assert len(counts) > 1, "the log never grew while verify ran"

        # The same CLI still finds tampering: an edited, a removed and a reordered row,
        # each in its own consistent copy taken with `kiosk backup`.
        tampering = {
            "edited": ["UPDATE audit SET detail = '{}' WHERE id = 5000"],
            "removed": ["DELETE FROM audit WHERE id = 5000"],
            "reordered": [
                "UPDATE audit SET id = -1 WHERE id = 4000",
                "UPDATE audit SET id = 4000 WHERE id = 6000",
                "UPDATE audit SET id = 6000 WHERE id = -1",
            ],
        }
        for name, statements in tampering.items():
            copy = state / f"{name}.db"
            backup = kiosk(config, "backup", str(copy))
            assert backup.returncode == 0, backup.stderr
            with sqlite3.connect(copy) as conn:
                for sql in statements:
                    conn.execute(sql)
            conn.close()
            broken = kiosk(config, "audit", "verify", "--db", str(copy))
            assert broken.returncode == 1, (name, broken.stdout, broken.stderr)
            assert "BROKEN" in broken.stderr, (name, broken.stderr)
        assert daemon.terminate() == 0
