"""Courier flows at the keypad: assignment order, no locker, "doesn't fit", cancel, jammed doors."""

import pytest
from flowcheck import actions, assert_sound, bodies

from kiosk.domain.errors import NoLockerAvailable
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus

TABLES = ("lockers", "parcels", "codes", "door_ops", "audit", "outbox")


def snapshot(ledger) -> dict[str, list[tuple]]:
    return {t: ledger.conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


def status(bank, label: str) -> LockerStatus:
    return bank.ledger.parcels.locker(label).status


async def deliver(bank, size: Size) -> tuple[str, str]:
    """Announce, type the delivery code, place the parcel, shut the door: (locker, parcel_id)."""
    ann = bank.service.announce(size)
    res = await bank.service.submit_code(ann.delivery_code)
    assert res.role == "courier" and bank.doors.is_open(res.locker)
    bank.doors.close(res.locker)
    outs = await bank.service.poll_doors()
    assert [(o.locker, o.result) for o in outs] == [(res.locker, "delivered")]
    return res.locker, ann.parcel_id


async def test_small_parcels_fill_small_lockers_in_natural_order_then_go_up(bank):
    got = [(await deliver(bank, Size.S))[0] for _ in range(6)]
    assert got == ["A-1", "A-2", "A-10", "B-1", "B-2", "C-1"]
    assert all(lk.status is LockerStatus.OCCUPIED for lk in bank.service.lockers())
    delivered = bodies(bank.ledger, "parcel.delivered")
    assert [e["locker"] for e in delivered] == got
    assert all(e["expires_at"] and e["size"] == "S" for e in delivered)
    assert_sound(bank.ledger)


async def test_a_medium_parcel_takes_a_large_locker_when_medium_is_full(bank):
    assert [(await deliver(bank, Size.M))[0] for _ in range(3)] == ["B-1", "B-2", "C-1"]
    assert status(bank, "A-1") is LockerStatus.AVAILABLE  # never a smaller one
    assert_sound(bank.ledger)


async def test_no_fitting_locker_refuses_and_changes_nothing(bank):
    await deliver(bank, Size.L)
    ann = bank.service.announce(Size.L)
    before = snapshot(bank.ledger)
    with pytest.raises(NoLockerAvailable) as info:
        await bank.service.submit_code(ann.delivery_code)
    assert info.value.code == "no_locker_available"
    assert info.value.details["parcel_id"] == ann.parcel_id
    assert snapshot(bank.ledger) == before
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert_sound(bank.ledger)


async def test_doesnt_fit_waits_for_the_door_then_opens_the_next_size_up(bank):
    ann = bank.service.announce(Size.S)
    assert (await bank.service.submit_code(ann.delivery_code)).locker == "A-1"
    out = await bank.service.doesnt_fit("A-1")
    assert (out.locker, out.result, out.next) == ("A-1", "awaiting_close", None)
    assert status(bank, "A-1") is LockerStatus.RESERVED  # held until its door is shut
    bank.doors.close("A-1")
    [out] = await bank.service.poll_doors()
    assert (out.result, out.error) == ("released", None)
    assert out.next is not None and out.next.locker == "B-1" and out.next.role == "courier"
    assert status(bank, "A-1") is LockerStatus.AVAILABLE
    assert status(bank, "B-1") is LockerStatus.RESERVED and bank.doors.is_open("B-1")
    bank.doors.close("B-1")
    assert [o.result for o in await bank.service.poll_doors()] == ["delivered"]
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker) == (ParcelStatus.DELIVERED, "B-1")
    assert status(bank, "A-1") is LockerStatus.AVAILABLE
    done = set(actions(bank.ledger))
    assert {"delivery.doesnt_fit", "locker.released", "parcel.delivered"} <= done
    assert_sound(bank.ledger)


async def test_doesnt_fit_with_the_door_already_shut_moves_on_at_once(bank):
    ann = bank.service.announce(Size.M)
    await bank.service.submit_code(ann.delivery_code)
    bank.doors.close("B-1")
    out = await bank.service.doesnt_fit("B-1")
    assert out.result == "released" and out.next.locker == "C-1"
    assert status(bank, "B-1") is LockerStatus.AVAILABLE
    assert status(bank, "C-1") is LockerStatus.RESERVED
    assert_sound(bank.ledger)


async def test_doesnt_fit_with_nothing_bigger_keeps_the_parcel_expected(bank):
    ann = bank.service.announce(Size.L)
    assert (await bank.service.submit_code(ann.delivery_code)).locker == "C-1"
    bank.doors.close("C-1")
    out = await bank.service.doesnt_fit("C-1")
    assert (out.result, out.next) == ("released", None)
    assert out.error is not None and out.error.code == "no_locker_available"
    assert out.to_dict()["error"]["code"] == "no_locker_available"
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert status(bank, "C-1") is LockerStatus.AVAILABLE
    # The delivery code still works: the courier may try again later.
    assert (await bank.service.submit_code(ann.delivery_code)).locker == "C-1"
    assert_sound(bank.ledger)


async def test_courier_cancel_releases_the_locker_once_shut(bank):
    ann = bank.service.announce(Size.S)
    await bank.service.submit_code(ann.delivery_code)
    out = await bank.service.courier_cancel("A-1")
    assert out.result == "awaiting_close"
    assert await bank.service.poll_doors() == []  # still open: nothing to finish
    bank.doors.close("A-1")
    [out] = await bank.service.poll_doors()
    assert (out.result, out.next, out.error) == ("released", None, None)
    assert status(bank, "A-1") is LockerStatus.AVAILABLE
    assert bank.ledger.parcels.locker("A-1").parcel_id is None
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert actions(bank.ledger)[-2:] == ["delivery.cancel", "locker.released"]
    assert [e["label"] for e in bodies(bank.ledger, "door.closed")] == ["A-1"]
    assert_sound(bank.ledger)


async def test_a_jammed_door_is_retried_once_then_out_of_service_and_the_next_opens(bank):
    bank.doors.jammed.add("A-1")
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    assert res.locker == "A-2" and bank.doors.is_open("A-2")
    assert bank.doors.pulses["A-1"] == 2  # one pulse and one retry
    assert bank.doors.pulses["A-2"] == 1
    jam = bank.ledger.parcels.locker("A-1")
    assert (jam.status, jam.parcel_id, jam.note) == (
        LockerStatus.OUT_OF_SERVICE,
        None,
        "door_jammed",
    )
    assert bodies(bank.ledger, "door.jammed") == [{"label": "A-1", "attempts": 2}]
    assert [e["label"] for e in bodies(bank.ledger, "locker.out_of_service")] == ["A-1"]
    assert "door.jammed" in actions(bank.ledger)
    bank.doors.close("A-2")
    await bank.service.poll_doors()
    assert bank.ledger.parcels.get(ann.parcel_id).locker == "A-2"
    # The jammed locker is not offered again.
    assert (await deliver(bank, Size.S))[0] == "A-10"
    assert_sound(bank.ledger)


async def test_when_every_fitting_door_is_jammed_there_is_no_locker(bank):
    bank.doors.jammed.add("C-1")
    ann = bank.service.announce(Size.L)
    with pytest.raises(NoLockerAvailable) as info:
        await bank.service.submit_code(ann.delivery_code)
    assert info.value.code == "no_locker_available"
    assert bank.doors.pulses["C-1"] == 2
    assert status(bank, "C-1") is LockerStatus.OUT_OF_SERVICE
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert bank.ledger.doors.unfinished() == []
    assert_sound(bank.ledger)


async def test_the_delivery_code_typed_again_while_open_gives_the_same_locker(bank):
    ann = bank.service.announce(Size.S)
    first = await bank.service.submit_code(ann.delivery_code)
    again = await bank.service.submit_code(ann.delivery_code)
    assert again.locker == first.locker == "A-1"
    assert bank.doors.pulses["A-1"] == 1
    assert status(bank, "A-2") is LockerStatus.AVAILABLE
    assert_sound(bank.ledger)
