"""A door that cannot be read after its pulse was acknowledged: the outcome is unknown, not a jam.

Both backends: the GPIO rig on mock pins whose sensor reads can fail (a cut
wire), and the Modbus rig whose board answers every door read with a Modbus
exception (a failed input stage) while its locks still work. Only a door read
shut after a pulse is a jam; an unreadable one flags the locker for a
technician, keeps the parcel as it was, and is reconciled once it reads again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from support.flaky import FlakyPin
from support.rig import DEFAULT_LOCKERS

from firmware_bridge.bank import DoorState
from kiosk.domain.errors import DoorStateUnknown
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus


@pytest.fixture
def pin_factory() -> Iterator[MockFactory]:
    """The GPIO rig's pins, sensor reads breakable (`pin.fail`)."""
    factory = MockFactory(pin_class=FlakyPin)
    yield factory
    factory.reset()


def unreadable(bank, label: str, broken: bool = True) -> None:
    """The door sensor of `label` cannot be read (Modbus: nor any door of its board)."""
    if bank.backend == "gpio":
        index = [lb for lb, _ in DEFAULT_LOCKERS].index(label)
        bank.factory.pin(14 + index).fail = broken  # build_bank: sensor pin 14 + i
    else:
        board, _ = bank.doors.board(label)
        board.inputs_failed = broken


def door_events(bank) -> list[str]:
    sql = "SELECT type FROM outbox WHERE type LIKE 'door.%' OR type LIKE 'locker.%' ORDER BY seq"
    return [r[0] for r in bank.ledger.conn.execute(sql)]


def recovered_audit(bank) -> list[dict]:
    rows = bank.ledger.conn.execute(
        "SELECT subject, detail FROM audit WHERE action = 'door_op.recovered' ORDER BY id"
    ).fetchall()
    return [{"label": r[0], **json.loads(r[1])} for r in rows]


async def supervise_until(bank, done, polls: int = 400) -> None:
    """Supervision passes until `done()` holds (a generous bound, not a timing threshold)."""
    for _ in range(polls):
        await bank.service.supervise()
        if done():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("supervision never got there")


async def test_a_delivery_whose_door_cannot_be_read_is_unknown_then_reconciled(bank):
    ann = bank.service.announce(Size.S)
    unreadable(bank, "A-1")
    with pytest.raises(DoorStateUnknown) as info:
        await bank.service.submit_code(ann.delivery_code)
    assert info.value.code == "door_state_unknown" and info.value.details["locker"] == "A-1"
    assert bank.doors.pulses["A-1"] == 1  # acknowledged once; not pulsed again blind
    assert sum(bank.doors.pulses.values()) == 1  # and no other locker was tried
    # Not a jam: flagged for a check, still in service, the parcel as it was.
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id, locker.needs_check) == (
        LockerStatus.RESERVED,
        ann.parcel_id,
        True,
    )
    assert locker.note != "door_jammed"
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert door_events(bank) == []  # no door.jammed, no locker.out_of_service
    assert [op.label for op in bank.ledger.doors.unfinished()] == ["A-1"]

    # The sensor is mended: the door is read (it did open) and settled as at start.
    unreadable(bank, "A-1", broken=False)
    assert bank.doors.is_open("A-1")
    await supervise_until(bank, lambda: not bank.ledger.doors.unfinished())
    [audit] = recovered_audit(bank)
    assert (audit["label"], audit["kind"], audit["door"]) == ("A-1", "delivery", "open")
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker, parcel.needs_check) == (
        ParcelStatus.DELIVERED,
        "A-1",
        True,
    )
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.needs_check) == (LockerStatus.OCCUPIED, True)
    assert bank.service.supervisor.state("A-1") is DoorState.OPEN
    await supervise_until(bank, lambda: True, polls=3)
    assert "door.forced" not in door_events(bank)  # its own pulse opened it


async def test_a_pickup_whose_door_cannot_be_read_keeps_the_parcel_and_flags_the_locker(bank):
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    bank.doors.close(res.locker)
    await supervise_until(bank, lambda: not bank.ledger.doors.unfinished())
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.DELIVERED
    bank.doors.jammed.add(res.locker)  # it will stay shut: the reconciliation must say so
    unreadable(bank, res.locker)
    with pytest.raises(DoorStateUnknown):
        await bank.service.submit_code(ann.pickup_code)
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker) == (ParcelStatus.DELIVERED, res.locker)
    locker = bank.ledger.parcels.locker(res.locker)
    assert (locker.status, locker.needs_check) == (LockerStatus.OCCUPIED, True)
    assert "door.jammed" not in door_events(bank)

    unreadable(bank, res.locker, broken=False)
    await supervise_until(bank, lambda: not bank.ledger.doors.unfinished())
    [audit] = recovered_audit(bank)
    assert (audit["kind"], audit["door"]) == ("pickup", "shut")
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.needs_check, parcel.check_reason) == (
        ParcelStatus.DELIVERED,
        True,
        "pickup",
    )
    assert bank.ledger.parcels.locker(res.locker).needs_check


async def test_a_door_read_shut_after_its_pulse_is_still_a_jam(bank):
    bank.doors.jammed.add("A-1")
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    assert res.locker == "A-2"
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.note, locker.needs_check) == (
        LockerStatus.OUT_OF_SERVICE,
        "door_jammed",
        False,
    )
