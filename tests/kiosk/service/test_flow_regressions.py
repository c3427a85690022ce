"""Paths the property machine found broken once: each stays fixed on both backends."""

import pytest
from flowcheck import assert_sound

from kiosk.domain.errors import DoorJammed, InvalidState
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus


async def test_a_door_open_for_a_technician_is_not_handed_to_a_courier(bank):
    svc = bank.service
    ann = svc.announce(Size.S, "P1")
    await svc.open_door("A-1", "inspect")  # A-1 stays AVAILABLE while its door is open
    got = await svc.submit_code(ann.delivery_code)
    assert got.locker == "A-2"
    open_rows = bank.ledger.conn.execute(
        "SELECT label, count(*) FROM door_ops WHERE state = 'OPEN' GROUP BY label"
    ).fetchall()
    assert dict(open_rows) == {"A-1": 1, "A-2": 1}
    for label in ("A-1", "A-2"):
        bank.doors.close(label)
    await svc.poll_doors()
    assert_sound(bank.ledger)


@pytest.mark.parametrize("choice", ["doesnt_fit", "courier_cancel"])
async def test_out_of_service_mid_delivery_lets_go_of_the_parcel(bank, choice):
    svc = bank.service
    ann = svc.announce(Size.S, "P1")
    first = await svc.submit_code(ann.delivery_code)
    svc.set_service(first.locker, False, "damaged hinge")
    bank.doors.close(first.locker)
    outcome = await getattr(svc, choice)(first.locker)
    locker = bank.ledger.parcels.locker(first.locker)
    assert locker.status is LockerStatus.OUT_OF_SERVICE and locker.parcel_id is None
    holders = [lk.label for lk in bank.ledger.parcels.lockers() if lk.parcel_id == "P1"]
    assert holders == ([outcome.next.locker] if outcome.next else [])
    if outcome.next:
        bank.doors.close(outcome.next.locker)
        await svc.poll_doors()
    assert_sound(bank.ledger)


async def test_a_check_is_not_recorded_while_the_door_is_open(bank):
    svc = bank.service
    ann = svc.announce(Size.S, "P1")
    res = await svc.submit_code(ann.delivery_code)
    bank.doors.close(res.locker)
    await svc.poll_doors()
    await svc.submit_code(ann.pickup_code)
    svc.recover()  # as after a crash mid-pickup: the locker is flagged
    await svc.submit_code(ann.pickup_code)  # the customer comes back; the door opens again
    with pytest.raises(InvalidState):
        svc.resolve_check(res.locker, False, "looked empty")
    bank.doors.close(res.locker)
    outcomes = await svc.poll_doors()
    assert [o.result for o in outcomes] == ["picked_up"]
    assert bank.ledger.parcels.get("P1").status is ParcelStatus.PICKED_UP
    assert_sound(bank.ledger)


async def test_one_code_tries_at_most_two_lockers(bank):
    svc = bank.service
    for label in ("A-1", "A-2", "A-10"):
        bank.doors.jammed.add(label)
    ann = svc.announce(Size.S, "P1")
    with pytest.raises(DoorJammed) as err:
        await svc.submit_code(ann.delivery_code)
    assert err.value.details["lockers"] == ["A-1", "A-2"]
    assert bank.doors.pulses["A-10"] == 0  # the third door was never touched
    assert bank.ledger.parcels.locker("A-10").status is LockerStatus.AVAILABLE
    assert bank.ledger.parcels.get("P1").status is ParcelStatus.EXPECTED
    assert_sound(bank.ledger)
