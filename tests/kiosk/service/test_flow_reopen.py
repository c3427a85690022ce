"""A visit's reopen and a presence reopening are journalled and announced as reopens, and
their "once" is read from the ledger, so a restart between the two forgets nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from flowcheck import Restarts, assert_sound, bodies
from support.clock import FakeClock
from support.doors import SimDoorPhysics
from support.rig import Bank, build_modbus_bank, simulated_lock_bank

from kiosk.domain.errors import InvalidState
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus


@pytest.fixture
async def pbank(tmp_path, code_key: bytes) -> AsyncIterator[Bank]:
    """Register map v2 boards: a presence sensor behind every door."""
    lock_bank = simulated_lock_bank(6, presence=True)
    rig = build_modbus_bank(str(tmp_path / "ledger.db"), code_key, FakeClock(), lock_bank=lock_bank)
    try:
        await rig.start()
        yield rig
    finally:
        await rig.stop()


@pytest.fixture
async def reopen():
    """Restart a bank: a new service on the same ledger file, boards and doors."""
    restarts = Restarts()
    yield restarts.reopen
    await restarts.close()


def put(bank: Bank, label: str, inside: bool = True) -> None:
    doors = bank.doors
    assert isinstance(doors, SimDoorPhysics)
    board, channel = doors.board(label)
    board.put(channel, inside)


async def close(bank: Bank, label: str) -> list[tuple[str, str]]:
    bank.doors.close(label)
    return [(o.locker, o.result) for o in await bank.service.poll_doors()]


def door_ops(bank: Bank) -> list[tuple[str, str, str, str]]:
    rows = bank.ledger.conn.execute("SELECT kind, label, actor, reason FROM door_ops ORDER BY id")
    return [tuple(r) for r in rows]


async def picked_up(bank: Bank) -> tuple[str, str]:
    """A parcel delivered and picked up for real: (locker, parcel_id)."""
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    put(bank, res.locker)
    assert await close(bank, res.locker) == [(res.locker, "delivered")]
    await bank.service.submit_code(ann.pickup_code)
    put(bank, res.locker, False)
    assert await close(bank, res.locker) == [(res.locker, "picked_up")]
    return res.locker, ann.parcel_id


async def test_a_visits_reopen_is_journalled_and_announced_as_a_reopen(pbank):
    locker, parcel_id = await picked_up(pbank)
    res = await pbank.service.reopen(locker, parcel_id, "customer", "didnt_open", "customer:keypad")
    assert res.locker == locker and pbank.doors.is_open(locker)
    assert door_ops(pbank)[-1] == ("reopen", locker, "customer", "didnt_open")
    assert bodies(pbank.ledger, "door.opened")[-1] == {
        "label": locker,
        "parcel_id": parcel_id,
        "reason": "reopen",
        "role": "customer",
    }
    assert await close(pbank, locker) == [(locker, "closed")]
    assert bodies(pbank.ledger, "door.closed")[-1]["reason"] == "reopen"
    assert not any(b["reason"] == "technician" for b in bodies(pbank.ledger, "door.opened"))
    detail = pbank.ledger.conn.execute(
        "SELECT actor, detail FROM audit WHERE action = 'door.opened' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert detail[0] == "customer" and '"reason":"reopen"' in detail[1].replace(" ", "")
    assert pbank.ledger.parcels.locker(locker).status is LockerStatus.AVAILABLE
    assert_sound(pbank.ledger)


async def test_a_presence_reopening_is_announced_as_a_reopen_for_the_courier(pbank):
    ann = pbank.service.announce(Size.S)
    res = await pbank.service.submit_code(ann.delivery_code)
    assert await close(pbank, res.locker) == [(res.locker, "empty")]
    opened = bodies(pbank.ledger, "door.opened")
    assert [(b["reason"], b.get("role")) for b in opened] == [
        ("delivery", None),
        ("reopen", "courier"),
    ]
    assert door_ops(pbank) == [("delivery", res.locker, "courier", "")]
    put(pbank, res.locker)
    assert await close(pbank, res.locker) == [(res.locker, "delivered")]
    assert_sound(pbank.ledger)


async def test_a_visits_reopen_is_once_across_a_restart(pbank, reopen):
    locker, parcel_id = await picked_up(pbank)
    await pbank.service.reopen(locker, parcel_id, "customer", "didnt_open", "customer:keypad")
    assert await close(pbank, locker) == [(locker, "closed")]
    rig = await reopen(pbank)
    with pytest.raises(InvalidState):
        await rig.service.reopen(locker, parcel_id, "customer", "didnt_open", "customer:keypad")
    assert not rig.doors.is_open(locker) and rig.doors.pulses[locker] == 3
    # "I left something" is another request: still allowed once, within its 30 s.
    await rig.service.reopen(locker, parcel_id, "customer", "left_something", "customer:keypad")
    assert await close(rig, locker) == [(locker, "closed")]
    rig = await reopen(rig)
    with pytest.raises(InvalidState):
        await rig.service.reopen(locker, parcel_id, "customer", "left_something", "c:keypad")
    assert rig.doors.pulses[locker] == 4
    assert_sound(rig.ledger)


async def test_a_presence_reopening_is_once_across_a_restart(pbank, reopen):
    ann = pbank.service.announce(Size.S)
    res = await pbank.service.submit_code(ann.delivery_code)
    assert await close(pbank, res.locker) == [(res.locker, "empty")]
    rig = await reopen(pbank)  # the courier is still at the reopened door
    assert rig.recovered == 0 and rig.doors.is_open(res.locker)
    assert await close(rig, res.locker) == [(res.locker, "not_delivered")]
    assert rig.doors.pulses[res.locker] == 2 and not rig.doors.is_open(res.locker)
    parcel = rig.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.needs_check) == (ParcelStatus.EXPECTED, False)
    assert rig.ledger.parcels.locker(res.locker).status is LockerStatus.AVAILABLE
    assert_sound(rig.ledger)


async def test_a_presence_reopening_closed_while_the_daemon_was_down_is_judged_at_start(
    pbank, reopen
):
    locker, parcel_id = await picked_up_pending(pbank)
    assert await close(pbank, locker) == [(locker, "still_inside")]
    pbank.doors.close(locker)  # the customer shut it again, the parcel still inside ...
    rig = await reopen(pbank)  # ... while the daemon was restarting
    assert rig.recovered == 0
    assert [(o.locker, o.result) for o in await rig.service.poll_doors()] == [
        (locker, "not_picked_up")
    ]
    assert rig.doors.pulses[locker] == 3  # delivery, pickup, the one reopening
    assert rig.ledger.parcels.get(parcel_id).status is ParcelStatus.DELIVERED
    assert rig.ledger.parcels.locker(locker).needs_check
    assert_sound(rig.ledger)


async def picked_up_pending(bank: Bank) -> tuple[str, str]:
    """A parcel delivered, its pickup door open with the parcel still inside."""
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    put(bank, res.locker)
    assert await close(bank, res.locker) == [(res.locker, "delivered")]
    await bank.service.submit_code(ann.pickup_code)
    return res.locker, ann.parcel_id
