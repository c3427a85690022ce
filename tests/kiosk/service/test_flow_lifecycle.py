"""A parcel's life after announce: reservations, cancel, extend, sweeps, expiry and return."""

from datetime import timedelta

import pytest
from flowcheck import assert_sound

from kiosk.domain.codes import code_digest
from kiosk.domain.errors import BadRequest, CodeCollision, Conflict, InvalidCode, InvalidState
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk.service.sweeper import SweepReport


def audit_rows(bank) -> int:
    return bank.ledger.conn.execute("SELECT count(*) FROM audit").fetchone()[0]


def parcel_events(bank) -> list[str]:
    return [
        e.type for e in bank.ledger.outbox.pending(limit=100_000) if e.type.startswith("parcel.")
    ]


def digest(bank, code: str) -> str:
    return code_digest(bank.key, code)


async def delivered(bank, size: Size = Size.S):
    ann = bank.service.announce(size)
    res = await bank.service.submit_code(ann.delivery_code)
    bank.doors.close(res.locker)
    await bank.service.poll_doors()
    return ann


async def test_sweeps_send_a_reminder_then_expiring_once_then_expired(bank):
    ann = await delivered(bank)
    t0 = bank.clock.now()
    at = lambda hours: bank.service.sweep(t0 + timedelta(hours=hours))  # noqa: E731
    assert at(23) == SweepReport()
    assert at(24) == SweepReport(reminders=1)
    assert at(30) == SweepReport()  # the same reminder is not sent twice
    assert at(48) == SweepReport(expiring=1)  # one day left
    assert at(49) == SweepReport() and at(60) == SweepReport()  # once; no reminder after it
    assert at(72) == SweepReport(expired=1)
    assert at(200) == SweepReport()
    assert parcel_events(bank) == [
        "parcel.delivered",
        "parcel.reminder",
        "parcel.expiring",
        "parcel.expired",
    ]
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert parcel.status is ParcelStatus.EXPIRED
    assert bank.ledger.parcels.locker("A-1").status is LockerStatus.OCCUPIED  # still inside
    assert_sound(bank.ledger)


async def test_a_ten_day_clock_jump_gives_one_expired_event_not_many_reminders(bank):
    await delivered(bank)
    bank.clock.advance(days=10)
    assert bank.service.sweep() == SweepReport(expired=1)
    assert bank.service.sweep() == SweepReport()
    assert parcel_events(bank) == ["parcel.delivered", "parcel.expired"]
    assert_sound(bank.ledger)


async def test_return_code_lets_a_collector_empty_the_locker(bank):
    ann = await delivered(bank)
    with pytest.raises(InvalidState):  # not expired yet
        bank.service.schedule_return(ann.parcel_id, digest(bank, "555123"))
    bank.clock.advance(days=3)
    bank.service.sweep()
    bank.service.schedule_return(ann.parcel_id, digest(bank, "555123"))
    rows = audit_rows(bank)
    bank.service.schedule_return(ann.parcel_id, digest(bank, "555123"))  # repeated: no-op
    assert audit_rows(bank) == rows
    res = await bank.service.submit_code("555123")
    assert (res.role, res.locker, res.parcel_id) == ("collector", "A-1", ann.parcel_id)
    assert bank.doors.is_open("A-1")
    bank.doors.close("A-1")
    assert [o.result for o in await bank.service.poll_doors()] == ["returned"]
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.RETURNED
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id) == (LockerStatus.AVAILABLE, None)
    assert parcel_events(bank)[-1] == "parcel.returned"
    assert bank.ledger.codes.of_parcel(ann.parcel_id) == []
    with pytest.raises(InvalidCode):
        await bank.service.submit_code("555123")
    assert_sound(bank.ledger)


async def test_reservation_create_is_idempotent(bank):
    args = ("P-1", Size.M, digest(bank, "111111"), digest(bank, "222222"), "O-1")
    first = bank.service.create_reservation(*args)
    rows = audit_rows(bank)
    again = bank.service.create_reservation(*args)
    assert again == first and audit_rows(bank) == rows
    assert [p.parcel_id for p in bank.service.parcels()] == ["P-1"]
    assert first.status is ParcelStatus.EXPECTED and first.source == "cloud"
    assert_sound(bank.ledger)


@pytest.mark.parametrize(
    "change",
    [{"size": Size.L}, {"order_id": "O-2"}, {"pickup": "333333"}, {"delivery": "444444"}],
)
async def test_reservation_with_other_details_is_a_conflict(bank, change):
    d, p = digest(bank, "111111"), digest(bank, "222222")
    bank.service.create_reservation("P-1", Size.M, d, p, "O-1")
    rows = audit_rows(bank)
    with pytest.raises(Conflict) as info:
        bank.service.create_reservation(
            "P-1",
            change.get("size", Size.M),
            digest(bank, change["delivery"]) if "delivery" in change else d,
            digest(bank, change["pickup"]) if "pickup" in change else p,
            change.get("order_id", "O-1"),
        )
    assert info.value.code == "conflict" and audit_rows(bank) == rows


async def test_a_closed_parcels_id_is_not_reused_by_a_new_reservation(bank):
    """Its codes are gone: a create with new digests must not be answered ok for nothing."""
    d, p = digest(bank, "111111"), digest(bank, "222222")
    bank.service.create_reservation("P-1", Size.M, d, p, "O-1")
    bank.service.cancel_reservation("P-1")
    rows = audit_rows(bank)
    for codes in ((d, p), (digest(bank, "555555"), digest(bank, "666666"))):
        with pytest.raises(Conflict, match="P-1 is CANCELLED at this bank") as info:
            bank.service.create_reservation("P-1", Size.M, *codes, "O-1")
        assert info.value.code == "conflict"
    assert audit_rows(bank) == rows and bank.ledger.codes.of_parcel("P-1") == []
    with pytest.raises(InvalidCode):
        await bank.service.submit_code("555555")
    assert_sound(bank.ledger)


async def test_a_digest_already_active_is_a_collision_and_nothing_is_stored(bank):
    bank.service.create_reservation("P-1", Size.S, digest(bank, "111111"), digest(bank, "222222"))
    rows = audit_rows(bank)
    with pytest.raises(CodeCollision) as info:
        bank.service.create_reservation(
            "P-2", Size.S, digest(bank, "777777"), digest(bank, "222222")
        )
    assert info.value.code == "code_collision"
    assert bank.ledger.parcels.find("P-2") is None
    assert bank.ledger.codes.find(digest(bank, "777777")) is None
    assert audit_rows(bank) == rows
    assert_sound(bank.ledger)


@pytest.mark.parametrize(
    "bad",
    ["", "not-a-digest", "A" * 43 + "=", "A" * 42 + "+", "A" * 44, "A" * 42 + "B"],
)
async def test_a_malformed_digest_is_a_bad_request(bank, bad):
    with pytest.raises(BadRequest) as info:
        bank.service.create_reservation("P-1", Size.S, bad, digest(bank, "222222"))
    assert info.value.code == "bad_request"
    with pytest.raises(BadRequest):
        bank.service.create_reservation("P-1", Size.S, digest(bank, "222222"), bad)
    assert bank.ledger.parcels.find("P-1") is None and audit_rows(bank) == 0


async def test_bad_ids_and_equal_codes_are_bad_requests(bank):
    d, p = digest(bank, "111111"), digest(bank, "222222")
    for parcel_id in ("", "has space", "x" * 65, "semi;colon"):
        with pytest.raises(BadRequest):
            bank.service.create_reservation(parcel_id, Size.S, d, p)
    with pytest.raises(BadRequest):
        bank.service.create_reservation("P-1", Size.S, d, d)
    assert bank.service.parcels() == []


async def test_cancel_an_expected_parcel_invalidates_its_codes(bank):
    ann = bank.service.announce(Size.S)
    parcel = bank.service.cancel_reservation(ann.parcel_id)
    assert parcel.status is ParcelStatus.CANCELLED and parcel.closed_at is not None
    assert bank.ledger.codes.of_parcel(ann.parcel_id) == []
    rows = audit_rows(bank)
    assert bank.service.cancel_reservation(ann.parcel_id).status is ParcelStatus.CANCELLED
    assert audit_rows(bank) == rows  # the second cancel changed nothing
    with pytest.raises(InvalidCode):
        await bank.service.submit_code(ann.delivery_code)
    assert sum(bank.doors.pulses.values()) == 0
    assert_sound(bank.ledger)


async def test_cancel_is_refused_once_delivered_or_while_the_door_is_open(bank):
    ann = bank.service.announce(Size.S)
    await bank.service.submit_code(ann.delivery_code)
    with pytest.raises(InvalidState):  # the courier is at the open door
        bank.service.cancel_reservation(ann.parcel_id)
    bank.doors.close("A-1")
    await bank.service.poll_doors()
    with pytest.raises(InvalidState) as info:
        bank.service.cancel_reservation(ann.parcel_id)
    assert info.value.code == "invalid_state"
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.DELIVERED
    assert_sound(bank.ledger)


async def test_extend_moves_the_deadline_later_only(bank):
    expected = bank.service.announce(Size.M)
    with pytest.raises(InvalidState):
        bank.service.extend(expected.parcel_id, bank.clock.now() + timedelta(days=9))
    ann = await delivered(bank)
    old = bank.ledger.parcels.get(ann.parcel_id).expires_at
    for earlier in (old, old - timedelta(hours=1)):
        with pytest.raises(BadRequest):
            bank.service.extend(ann.parcel_id, earlier)
    bank.clock.advance(hours=48)
    assert bank.service.sweep().expiring == 1
    later = old + timedelta(days=4)
    assert bank.service.extend(ann.parcel_id, later).expires_at == later
    assert not bank.ledger.parcels.get(ann.parcel_id).expiring_sent  # will warn again
    bank.clock.current = old + timedelta(hours=1)
    assert bank.service.sweep().expired == 0
    res = await bank.service.submit_code(ann.pickup_code)  # past the old deadline
    assert res.role == "customer"
    bank.doors.close(res.locker)
    assert [o.result for o in await bank.service.poll_doors()] == ["picked_up"]
    assert "parcel.extend" in [r[0] for r in bank.ledger.conn.execute("SELECT action FROM audit")]
    assert_sound(bank.ledger)
