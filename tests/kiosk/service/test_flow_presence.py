"""Parcel-presence sensors in the flows, on the Modbus rig (register map v2 boards over a pty).

A delivery closed on an empty compartment and a pickup closed on a parcel
still inside are refused after one reopening; idle lockers that hold what
they should not, or lost what they held, are flagged and raise events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from flowcheck import actions, assert_sound, bodies
from support.clock import FakeClock
from support.doors import SimDoorPhysics
from support.rig import Bank, build_modbus_bank, simulated_lock_bank

from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus


@pytest.fixture
async def pbank(tmp_path, code_key: bytes) -> AsyncIterator[Bank]:
    lock_bank = simulated_lock_bank(6, presence=True)
    rig = build_modbus_bank(str(tmp_path / "ledger.db"), code_key, FakeClock(), lock_bank=lock_bank)
    try:
        await rig.start()
        yield rig
    finally:
        await rig.stop()


def put(bank: Bank, label: str, inside: bool = True) -> None:
    """Something goes into (or comes out of) the compartment behind `label`."""
    doors = bank.doors
    assert isinstance(doors, SimDoorPhysics)
    board, channel = doors.board(label)
    board.put(channel, inside)


async def close(bank: Bank, label: str) -> list[tuple[str, str]]:
    bank.doors.close(label)
    return [(o.locker, o.result) for o in await bank.service.poll_doors()]


async def deliver(bank: Bank) -> tuple[str, str, str]:
    """A parcel delivered for real: (locker, parcel_id, pickup code)."""
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    put(bank, res.locker)
    assert await close(bank, res.locker) == [(res.locker, "delivered")]
    return res.locker, ann.parcel_id, ann.pickup_code


async def test_a_parcel_inside_at_the_close_is_a_delivery(pbank):
    locker, parcel_id, _ = await deliver(pbank)
    assert pbank.ledger.parcels.get(parcel_id).status is ParcelStatus.DELIVERED
    assert pbank.service.presence()[locker] is True
    assert pbank.doors.pulses[locker] == 1  # no reopening
    assert_sound(pbank.ledger)


async def test_an_empty_close_reopens_once_then_the_parcel_goes_in(pbank):
    ann = pbank.service.announce(Size.S)
    res = await pbank.service.submit_code(ann.delivery_code)
    assert await close(pbank, res.locker) == [(res.locker, "empty")]
    assert pbank.doors.is_open(res.locker) and pbank.doors.pulses[res.locker] == 2
    assert pbank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    put(pbank, res.locker)
    assert await close(pbank, res.locker) == [(res.locker, "delivered")]
    assert pbank.ledger.parcels.locker(res.locker).status is LockerStatus.OCCUPIED
    assert_sound(pbank.ledger)


async def test_still_empty_at_the_second_close_is_no_delivery_and_the_code_still_works(pbank):
    ann = pbank.service.announce(Size.S)
    res = await pbank.service.submit_code(ann.delivery_code)
    assert await close(pbank, res.locker) == [(res.locker, "empty")]
    assert await close(pbank, res.locker) == [(res.locker, "not_delivered")]
    parcel = pbank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker) == (ParcelStatus.EXPECTED, None)
    locker = pbank.ledger.parcels.locker(res.locker)
    assert (locker.status, locker.parcel_id, locker.needs_check) == (
        LockerStatus.AVAILABLE,
        None,
        False,
    )
    assert bodies(pbank.ledger, "parcel.not_delivered") == [
        {"parcel_id": ann.parcel_id, "locker": res.locker, "reason": "compartment_empty"}
    ]
    moves = [
        e.type
        for e in pbank.ledger.outbox.pending(limit=1000)
        if e.type.startswith("door.") and e.body["label"] == res.locker
    ]
    assert moves == ["door.opened", "door.closed", "door.opened", "door.closed"]
    assert not bodies(pbank.ledger, "parcel.delivered")
    assert_sound(pbank.ledger)
    again = await pbank.service.submit_code(ann.delivery_code)  # still valid
    assert again.locker == res.locker and pbank.doors.is_open(res.locker)


async def test_a_parcel_left_inside_reopens_once_then_stays_delivered_and_flagged(pbank):
    locker, parcel_id, pickup = await deliver(pbank)
    res = await pbank.service.submit_code(pickup)
    assert res.role == "customer"
    assert await close(pbank, locker) == [(locker, "still_inside")]
    assert pbank.doors.is_open(locker)
    assert await close(pbank, locker) == [(locker, "not_picked_up")]
    parcel = pbank.ledger.parcels.get(parcel_id)
    assert parcel.status is ParcelStatus.DELIVERED
    row = pbank.ledger.parcels.locker(locker)
    assert (row.status, row.needs_check) == (LockerStatus.OCCUPIED, True)
    assert bodies(pbank.ledger, "parcel.not_picked_up")[0]["locker"] == locker
    assert bodies(pbank.ledger, "locker.needs_check") == [
        {"label": locker, "reason": "parcel_left_inside"}
    ]
    assert_sound(pbank.ledger)
    assert (await pbank.service.submit_code(pickup)).locker == locker  # the code still opens it


async def test_a_parcel_taken_at_the_second_try_is_a_pickup(pbank):
    locker, parcel_id, pickup = await deliver(pbank)
    await pbank.service.submit_code(pickup)
    assert await close(pbank, locker) == [(locker, "still_inside")]
    put(pbank, locker, False)
    assert await close(pbank, locker) == [(locker, "picked_up")]
    assert pbank.ledger.parcels.get(parcel_id).status is ParcelStatus.PICKED_UP
    assert_sound(pbank.ledger)


async def test_an_available_locker_reading_occupied_is_flagged_and_not_assigned(pbank):
    put(pbank, "A-1")  # something left behind, or pushed in through a forced door
    for _ in range(3):
        await pbank.service.supervise()
    row = pbank.ledger.parcels.locker("A-1")
    assert (row.status, row.needs_check) == (LockerStatus.AVAILABLE, True)
    assert bodies(pbank.ledger, "locker.needs_check") == [
        {"label": "A-1", "reason": "occupied_while_available"}
    ]
    ann = pbank.service.announce(Size.S)
    assert (await pbank.service.submit_code(ann.delivery_code)).locker == "A-2"
    put(pbank, "A-1", False)
    pbank.service.resolve_check("A-1", False, "emptied it", "tech")
    assert not pbank.ledger.parcels.locker("A-1").needs_check
    assert_sound(pbank.ledger)


async def test_a_delivered_locker_reading_empty_raises_an_alarm_once(pbank):
    locker, parcel_id, _ = await deliver(pbank)
    put(pbank, locker, False)  # taken through a forced door
    for _ in range(4):
        await pbank.service.supervise()
    assert bodies(pbank.ledger, "parcel.missing") == [
        {"parcel_id": parcel_id, "locker": locker, "status": "DELIVERED"}
    ]
    assert pbank.ledger.parcels.locker(locker).needs_check
    assert "parcel.missing" in actions(pbank.ledger)
    assert_sound(pbank.ledger)


async def test_one_reading_is_not_enough_to_flag_an_idle_locker(pbank):
    put(pbank, "A-1")
    await pbank.service.supervise()
    put(pbank, "A-1", False)  # a flicker of the beam
    for _ in range(3):
        await pbank.service.supervise()
    assert not pbank.ledger.parcels.locker("A-1").needs_check
    assert not bodies(pbank.ledger, "locker.needs_check")
