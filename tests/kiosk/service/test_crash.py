"""Crash safety: SIGKILL a delivery or a pickup between every pair of its steps, then recover.

A child process (tests/support/crash_child.py) runs the real service on a real
ledger file with a GpioLockBank over gpiozero's MockFactory and door physics.
It counts kill points, every SQL statement before SQLite runs it plus the lock
pulse and each door movement, and kills itself by SIGKILL at point N. Here,
for every N: the ledger must open cleanly (integrity check, WAL replayed,
migrations), `start()` settles the interrupted door operation, and then
* the ledger invariants hold (tests/support/invariants.py);
* a COMMIT the child passed is in the file, one it did not reach is not;
* no parcel is EXPECTED once its lock was pulsed or its door seen open, and
  every pulse had a journal row before it (docs/architecture.md, "Recovery after a crash");
* an interrupted delivery gives DELIVERED + needs_check in an OCCUPIED,
  flagged locker, never AVAILABLE; an interrupted pickup leaves the parcel
  DELIVERED (flagged) in its OCCUPIED locker unless PICKED_UP committed;
* the next courier with a parcel of the same size never gets a locker that
  may hold the first parcel, and a courier whose delivery never got going
  can simply type the code again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from support.child_run import ChildRun, Commits
from support.clock import FakeClock
from support.fork_server import ForkPool
from support.invariants import check_invariants
from support.rig import build_bank

from kiosk.config.model import PolicyConfig
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk.ledger.records import DoorOp

TESTS = Path(__file__).resolve().parents[2]
CHILD = TESTS / "support" / "crash_child.py"
PARCEL = "P-1"
#: Where P-1 goes: the smallest M locker (DEFAULT_LOCKERS of tests/support/rig.py).
HOME = "B-1"
#: Children run two at a time, each a fork of a server that has imported everything
#: (support.fork_server): a kill point costs a fork, not a Python start-up.
WORKERS = 2
CHILD_TIMEOUT_S = 60.0
#: As the child's: a late door must not turn into a second pulse.
POLICY = PolicyConfig(door_open_timeout_s=5.0, unlock_retries=1)


# --- the child and what it printed --------------------------------------------


# ChildRun: tests/support/child_run.py


def _argv(db: Path, key: bytes, code: str, scenario: str, kill_at: int) -> list[str]:
    return [
        *("--db", str(db), "--key", key.hex(), "--code", code),
        *("--scenario", scenario, "--kill-at", str(kill_at)),
    ]


async def _run_child(
    pool: ForkPool, db: Path, key: bytes, code: str, scenario: str, kill_at: int
) -> ChildRun:
    """One child on the ledger `db`; it dies at point `kill_at` (0: never)."""
    out, err = Path(f"{db}.out"), Path(f"{db}.err")
    return await pool.run(_argv(db, key, code, scenario, kill_at), kill_at, out, err)


# --- the bank, set up and recovered in this process ----------------------------


async def _shut(rig: Any, factory: MockFactory) -> None:
    await rig.doors.stop()
    await rig.gpio.close()
    rig.ledger.close()
    factory.reset()


async def _set_up(path: Path, key: bytes, scenario: str) -> str:
    """The ledger before the scenario: parcel P-1 (M) announced, for a pickup also delivered.

    Returns the code the child types.
    """
    factory = MockFactory()
    rig = build_bank(str(path), factory, key, FakeClock(), policy=POLICY)
    try:
        await rig.service.start()
        rig.doors.start()  # after the bank claimed the pins: their pull-ups read "open"
        announced = rig.service.announce(Size.M, PARCEL)
        if scenario == "delivery":
            return announced.delivery_code
        opened = await rig.service.submit_code(announced.delivery_code)
        rig.doors.close(opened.locker)
        assert [o.result for o in await rig.service.poll_doors()] == ["delivered"]
        return announced.pickup_code
    finally:
        await _shut(rig, factory)


def _door_ops(rig: Any, kind: str) -> list[DoorOp]:
    rows = rig.ledger.db.query(
        "SELECT * FROM door_ops WHERE kind = ? AND parcel_id = ? ORDER BY id", (kind, PARCEL)
    )
    return [DoorOp.from_row(r) for r in rows]


def _recovered_from(rig: Any, op: DoorOp) -> str:
    """The journal state the recovery found the operation in (its audit row says)."""
    rows = rig.ledger.db.query(
        "SELECT detail FROM audit WHERE action = 'door_op.recovered' ORDER BY id"
    )
    found = [json.loads(r["detail"]) for r in rows]
    was = [d["was"] for d in found if d["op"] == op.id]
    assert len(was) == 1, f"door op {op.id} was recovered {len(was)} times"
    return was[0]


def _check_delivery(rig: Any, run: ChildRun, op: DoorOp | None) -> set[str]:
    """Returns the lockers that may hold the parcel."""
    touched = run.pulsed | run.opened
    parcel = rig.ledger.parcels.get(PARCEL)
    if touched:
        assert parcel.status is not ParcelStatus.EXPECTED, (
            f"parcel is EXPECTED although its door was {touched} (pulsed or opened)"
        )
    if op is None:
        assert parcel.status is ParcelStatus.EXPECTED and parcel.locker is None, parcel
        busy = [
            lk for lk in rig.ledger.parcels.lockers() if lk.status is not LockerStatus.AVAILABLE
        ]
        assert not busy, f"no journal row, yet lockers are busy: {busy}"
        return set()
    parcel_state = (parcel.status, parcel.locker, parcel.needs_check)
    locker = rig.ledger.parcels.locker(op.label)
    locker_state = (locker.status, locker.parcel_id, locker.needs_check)
    flagged = op.state != "DONE"
    assert parcel_state == (ParcelStatus.DELIVERED, op.label, flagged), (
        f"parcel (status, locker, needs_check) = {parcel_state}, journal op {op.state}"
    )
    assert locker_state == (LockerStatus.OCCUPIED, PARCEL, flagged), (
        f"locker {op.label} (status, parcel, needs_check) = {locker_state}, journal op {op.state}"
    )
    return {op.label, *touched}


def _check_pickup(rig: Any, op: DoorOp | None) -> set[str]:
    """Returns the lockers that may hold the parcel."""
    parcel = rig.ledger.parcels.get(PARCEL)
    locker = rig.ledger.parcels.locker(HOME)
    parcel_state = (parcel.status, parcel.needs_check)
    locker_state = (locker.status, locker.parcel_id, locker.needs_check)
    if op is not None and op.state == "DONE":
        assert parcel_state == (ParcelStatus.PICKED_UP, False), parcel_state
        assert locker_state == (LockerStatus.AVAILABLE, None, False), locker_state
        return set()
    flagged = op is not None
    assert parcel_state == (ParcelStatus.DELIVERED, flagged), (
        f"parcel (status, needs_check) = {parcel_state}, journal op {op and op.state}"
    )
    assert locker_state == (LockerStatus.OCCUPIED, PARCEL, flagged), (
        f"locker {HOME} (status, parcel, needs_check) = {locker_state}, journal op "
        f"{op and op.state}"
    )
    return {HOME}


async def _check_recovery(
    path: Path,
    key: bytes,
    code: str,
    scenario: str,
    run: ChildRun,
    commits: Commits,
    point: str,
) -> None:
    n = run.kill_at
    assert run.returncode == -9, f"the child exited with {run.returncode}, not by SIGKILL"
    assert run.killed == point, f"the child died at {run.killed!r}: the points moved"
    factory = MockFactory()
    rig = build_bank(str(path), factory, key, FakeClock(), policy=POLICY)  # must open cleanly
    try:
        await rig.service.start()  # recover()
        rig.doors.start()
        assert rig.ledger.doors.unfinished() == [], "door operations left unfinished"
        check_invariants(rig.ledger.conn)

        ops = _door_ops(rig, scenario)
        assert len(ops) <= 1, f"more than one {scenario} door op: {ops}"
        op = ops[0] if ops else None
        assert (op is not None) == (n > commits.op_written), (
            f"journal row {'present' if op else 'missing'}; its COMMIT is point "
            f"{commits.op_written}"
        )
        assert (op is not None and op.state == "DONE") == (n > commits.op_done), (
            f"journal op is {op and op.state}; the closing COMMIT is point {commits.op_done}"
        )
        if op is not None and op.state == "RECOVERED":
            want = "OPEN" if n > commits.op_open else "PENDING"
            assert _recovered_from(rig, op) == want, f"recovery did not find the op {want}"
        if op is not None and op.state == "DONE":
            assert run.closed == {op.label}, f"closed without a door shut: {run.closed}"
        journaled = {op.label} if op else set()
        assert run.pulsed <= journaled, f"pulsed {run.pulsed} without a journal row"

        if scenario == "delivery":
            holding = _check_delivery(rig, run, op)
        else:
            holding = _check_pickup(rig, op)

        svc = rig.service
        if (
            scenario == "delivery"
            and rig.ledger.parcels.get(PARCEL).status is ParcelStatus.EXPECTED
        ):
            retry = await svc.submit_code(code)
            rig.doors.close(retry.locker)
            assert [o.result for o in await svc.poll_doors()] == ["delivered"], "retry failed"
            holding = {retry.locker}
        nxt = svc.announce(Size.M, "P-2")
        got = await svc.submit_code(nxt.delivery_code)
        assert got.locker not in holding, (
            f"the next courier got locker {got.locker}, which may hold {PARCEL}"
        )
        rig.doors.close(got.locker)
        assert [o.result for o in await svc.poll_doors()] == ["delivered"]
        check_invariants(rig.ledger.conn)
    finally:
        await _shut(rig, factory)


# --- the test --------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["delivery", "pickup"])
async def test_sigkill_at_every_point_then_recover(tmp_path: Path, scenario: str) -> None:
    key = os.urandom(32)
    setup = tmp_path / "setup.db"
    code = await _set_up(setup, key, scenario)
    assert not Path(f"{setup}-wal").exists(), "the set-up ledger must be one file to copy"

    async with ForkPool(CHILD, WORKERS, CHILD_TIMEOUT_S) as pool:
        await _kill_everywhere(tmp_path, pool, setup, key, code, scenario)


async def _kill_everywhere(
    tmp_path: Path, pool: ForkPool, setup: Path, key: bytes, code: str, scenario: str
) -> None:
    count_db = tmp_path / "count.db"
    shutil.copyfile(setup, count_db)
    counted = await _run_child(pool, count_db, key, code, scenario, 0)
    assert counted.returncode == 0, f"counting run failed:\n{counted.tail()}"
    total = int(counted.lines[-1].split()[1])
    points = counted.points()
    assert sorted(points) == list(range(1, total + 1)) and total > 20, counted.tail()
    assert any(w.startswith("after door") and "opened" in w for w in points.values())
    commits = Commits.find(points)

    async def crash(n: int) -> tuple[Path, ChildRun]:
        db = tmp_path / f"kill-{n:03}.db"
        shutil.copyfile(setup, db)
        return db, await _run_child(pool, db, key, code, scenario, n)  # WORKERS at a time

    tasks = [asyncio.create_task(crash(n)) for n in range(1, total + 1)]
    failures: list[str] = []
    try:
        for n, task in enumerate(tasks, start=1):
            db, run = await task
            try:
                await _check_recovery(db, key, code, scenario, run, commits, points[n])
            except Exception as exc:  # collect every kill point that fails, then report them all
                failures.append(
                    f"N={n} ({points[n]}): {type(exc).__name__}: {exc}\n    child: "
                    + run.tail().replace("\n", "\n    ")
                )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not failures, (
        f"{scenario}: {len(failures)} of {total} kill points broke crash safety:\n"
        + "\n".join(failures)
    )
