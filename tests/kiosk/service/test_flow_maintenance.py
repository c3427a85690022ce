"""Technician work and crash recovery: open with a reason, service in/out, jams, checks."""

import asyncio
from datetime import timedelta

import pytest
from flowcheck import Restarts, assert_sound

from kiosk.domain.errors import BadRequest, DoorJammed, LockerNotEmpty, LockerOutOfService
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus


def audit(bank) -> list[tuple[str, str, str]]:
    sql = "SELECT actor, action, detail FROM audit ORDER BY id"
    return [tuple(r) for r in bank.ledger.conn.execute(sql)]


def events(bank) -> list[tuple[str, dict]]:
    return [(e.type, e.body) for e in bank.ledger.outbox.pending(limit=100_000)]


@pytest.fixture
async def reopen():
    """Restart (or crash) a bank and build it again on the same ledger file."""
    restarts = Restarts()
    yield restarts.reopen
    await restarts.close()


async def delivered(bank, size: Size = Size.S):
    ann = bank.service.announce(size)
    res = await bank.service.submit_code(ann.delivery_code)
    bank.doors.close(res.locker)
    await bank.service.poll_doors()
    return ann


async def test_technician_open_is_audited_and_changes_no_state(bank):
    ann = await delivered(bank)
    before = [(lk.label, lk.status, lk.parcel_id) for lk in bank.service.lockers()]
    res = await bank.service.open_door("A-1", "  check the hinge  ", actor="tech-7")
    assert (res.role, res.locker, res.parcel_id) == ("technician", "A-1", ann.parcel_id)
    assert bank.doors.is_open("A-1")
    bank.doors.close("A-1")
    [out] = await bank.service.poll_doors()
    assert (out.kind, out.result) == ("technician", "closed")
    assert [(lk.label, lk.status, lk.parcel_id) for lk in bank.service.lockers()] == before
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.DELIVERED
    rows = audit(bank)
    assert ("tech-7", "technician.open", '{"reason":"check the hinge"}') in rows
    assert [r[1] for r in rows if r[0] == "tech-7"] == [
        "technician.open",
        "door.opened",
        "door.closed",
    ]
    door = [(t, b["label"], b["reason"]) for t, b in events(bank) if t.startswith("door.")]
    assert door[-2:] == [("door.opened", "A-1", "technician"), ("door.closed", "A-1", "technician")]
    assert_sound(bank.ledger)


@pytest.mark.parametrize("reason", ["", "   ", None])
async def test_technician_actions_need_a_reason(bank, reason):
    for action in (
        lambda: bank.service.set_service("A-1", False, reason),
        lambda: bank.service.resolve_check("A-1", True, reason),
    ):
        with pytest.raises(BadRequest):
            action()
    with pytest.raises(BadRequest) as info:
        await bank.service.open_door("A-1", reason)
    assert info.value.code == "bad_request"
    assert bank.doors.pulses["A-1"] == 0 and audit(bank) == []


async def test_out_of_service_is_not_assigned_and_in_service_is_available_again(bank):
    locker = bank.service.set_service("A-1", False, "cracked door")
    assert locker.status is LockerStatus.OUT_OF_SERVICE
    assert ("locker.out_of_service", {"label": "A-1", "reason": "cracked door"}) in events(bank)
    assert (await delivered(bank)).parcel_id  # went somewhere else:
    assert bank.ledger.parcels.locker("A-2").status is LockerStatus.OCCUPIED
    assert bank.doors.pulses["A-1"] == 0
    assert bank.service.set_service("A-1", True, "door replaced").status is LockerStatus.AVAILABLE
    assert ("locker.in_service", {"label": "A-1", "reason": "door replaced"}) in events(bank)
    assert (await delivered(bank)).parcel_id
    assert bank.ledger.parcels.locker("A-1").status is LockerStatus.OCCUPIED
    assert_sound(bank.ledger)


async def test_a_locker_holding_a_parcel_comes_back_occupied(bank):
    ann = await delivered(bank)
    bank.service.set_service("A-1", False, "inspection")
    with pytest.raises(LockerOutOfService) as info:
        await bank.service.submit_code(ann.pickup_code)
    assert info.value.code == "locker_out_of_service"
    locker = bank.service.set_service("A-1", True, "inspection done")
    assert (locker.status, locker.parcel_id) == (LockerStatus.OCCUPIED, ann.parcel_id)
    assert (await bank.service.submit_code(ann.pickup_code)).locker == "A-1"
    assert_sound(bank.ledger)


async def test_a_pickup_door_that_will_not_open_leaves_the_parcel_recorded_inside(bank):
    ann = await delivered(bank)
    await asyncio.sleep(bank.pulse_s + 0.02)  # the delivery's pulse is over
    bank.doors.jammed.add("A-1")
    with pytest.raises(DoorJammed) as info:
        await bank.service.submit_code(ann.pickup_code)
    assert info.value.code == "door_jammed" and info.value.details["locker"] == "A-1"
    assert bank.doors.pulses["A-1"] == 1 + 2  # the delivery, then a pulse and a retry
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker) == (ParcelStatus.DELIVERED, "A-1")
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id) == (LockerStatus.OUT_OF_SERVICE, ann.parcel_id)
    assert [t for t, _ in events(bank)][-2:] == ["door.jammed", "locker.out_of_service"]
    assert_sound(bank.ledger)


async def test_a_crash_with_a_delivery_door_open_is_recovered_as_delivered_needing_a_check(
    bank, reopen
):
    ann = bank.service.announce(Size.S)
    await bank.service.submit_code(ann.delivery_code)  # door open, courier at it... crash
    rig = await reopen(bank)
    assert rig.recovered == 1 and rig.ledger.doors.unfinished() == []
    parcel = rig.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker, parcel.needs_check) == (
        ParcelStatus.DELIVERED,
        "A-1",
        True,
    )
    locker = rig.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id, locker.needs_check) == (
        LockerStatus.OCCUPIED,
        ann.parcel_id,
        True,
    )
    assert ("parcel.delivered", "A-1") in [(t, b.get("locker")) for t, b in events(rig)]
    assert "door_op.recovered" in [r[1] for r in audit(rig)]
    other = rig.service.announce(Size.S)
    assert (await rig.service.submit_code(other.delivery_code)).locker == "A-2"
    rig.doors.close("A-2")
    await rig.service.poll_doors()
    again = await reopen(rig)  # a second restart finds nothing left to settle
    assert again.recovered == 0
    assert again.ledger.parcels.locker("A-1").needs_check
    assert_sound(again.ledger)


async def test_a_delivery_journaled_before_its_pulse_is_still_assumed_inside(bank, reopen):
    ann = bank.service.announce(Size.M)
    ledger, now = bank.ledger, bank.clock.now()
    with ledger.tx():  # what a delivery commits before its unlock pulse; then the crash
        ledger.parcels.update_locker(
            ledger.parcels.locker("B-1"),
            now,
            status=LockerStatus.RESERVED,
            parcel_id=ann.parcel_id,
            reserved_until=now + timedelta(minutes=15),
        )
        ledger.doors.add("delivery", "B-1", ann.parcel_id, now, actor="courier")
        ledger.audit.record(now, "courier", "locker.reserved", "B-1", parcel_id=ann.parcel_id)
    assert bank.doors.pulses["B-1"] == 0
    rig = await reopen(bank)
    assert rig.recovered == 1
    locker = rig.ledger.parcels.locker("B-1")
    assert (locker.status, locker.needs_check) == (LockerStatus.OCCUPIED, True)
    parcel = rig.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.needs_check) == (ParcelStatus.DELIVERED, True)
    rig.service.set_service("B-1", False, "look inside")
    with pytest.raises(LockerNotEmpty) as info:  # not without recording what is inside
        rig.service.set_service("B-1", True, "back")
    assert info.value.code == "locker_not_empty"
    other = rig.service.announce(Size.M)
    assert (await rig.service.submit_code(other.delivery_code)).locker == "B-2"
    assert_sound(rig.ledger)


async def test_a_delivery_cut_off_while_waiting_for_the_door_is_assumed_inside(bank, reopen):
    ann = bank.service.announce(Size.M)
    submit = asyncio.ensure_future(bank.service.submit_code(ann.delivery_code))
    while not bank.ledger.doors.unfinished():
        await asyncio.sleep(0)  # journaled and pulsed; the sensor not yet read open
    submit.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await submit
    rig = await reopen(bank)
    assert rig.recovered == 1
    locker = rig.ledger.parcels.locker("B-1")
    assert (locker.status, locker.needs_check) == (LockerStatus.OCCUPIED, True)
    assert rig.ledger.parcels.get(ann.parcel_id).needs_check
    assert_sound(rig.ledger)


async def test_resolve_check_parcel_found_inside(bank, reopen):
    ann = bank.service.announce(Size.S)
    await bank.service.submit_code(ann.delivery_code)
    rig = await reopen(bank)
    locker = rig.service.resolve_check("A-1", True, "parcel seen inside")
    assert (locker.status, locker.needs_check, locker.parcel_id) == (
        LockerStatus.OCCUPIED,
        False,
        ann.parcel_id,
    )
    parcel = rig.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.needs_check) == (ParcelStatus.DELIVERED, False)
    assert [c.role for c in rig.ledger.codes.of_parcel(ann.parcel_id)] == ["pickup"]
    res = await rig.service.submit_code(ann.pickup_code)
    rig.doors.close(res.locker)
    assert [o.result for o in await rig.service.poll_doors()] == ["picked_up"]
    assert rig.ledger.parcels.locker("A-1").status is LockerStatus.AVAILABLE
    assert_sound(rig.ledger)


async def test_resolve_check_locker_found_empty(bank, reopen):
    ann = bank.service.announce(Size.S)
    await bank.service.submit_code(ann.delivery_code)
    rig = await reopen(bank)
    locker = rig.service.resolve_check("A-1", False, "empty, courier kept it")
    assert (locker.status, locker.needs_check, locker.parcel_id) == (
        LockerStatus.AVAILABLE,
        False,
        None,
    )
    parcel = rig.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker, parcel.needs_check) == (
        ParcelStatus.EXPECTED,
        None,
        False,
    )
    assert "parcel.not_delivered" in [r[1] for r in audit(rig)]
    res = await rig.service.submit_code(ann.delivery_code)  # the courier comes back
    assert res.locker == "A-1"
    assert_sound(rig.ledger)


async def test_a_crash_during_pickup_keeps_the_parcel_inside_and_flags_it(bank, reopen):
    ann = await delivered(bank)
    await bank.service.submit_code(ann.pickup_code)  # door open... crash
    rig = await reopen(bank)
    parcel = rig.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.needs_check, parcel.check_reason) == (
        ParcelStatus.DELIVERED,
        True,
        "pickup",
    )
    assert rig.ledger.parcels.locker("A-1").needs_check
    rig.service.resolve_check("A-1", False, "customer took it")
    assert rig.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.PICKED_UP
    assert rig.ledger.parcels.locker("A-1").status is LockerStatus.AVAILABLE
    assert_sound(rig.ledger)
