"""Code entry through the service: wrong codes, back-off, daily budget, expiry, restarts."""

from datetime import timedelta

import pytest
from flowcheck import Restarts, assert_sound

from kiosk.domain.codes import code_digest
from kiosk.domain.errors import (
    BadRequest,
    CodeExpired,
    InvalidCode,
    LockedOut,
    NotYetDelivered,
    SiteLocked,
)
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus

WRONG = ["901234", "902345", "903456", "904567", "905678", "906789", "907890"]


@pytest.fixture
async def reopen():
    """Restart (or crash) a bank and build it again on the same ledger file."""
    restarts = Restarts()
    yield restarts.reopen
    await restarts.close()


async def wrong(bank, code: str) -> Exception:
    with pytest.raises((InvalidCode, LockedOut, SiteLocked)) as info:
        await bank.service.submit_code(code)
    return info.value


async def test_wrong_codes_count_down_then_lock_out_even_the_right_code(bank):
    ann = bank.service.announce(Size.S)
    errs = [await wrong(bank, c) for c in WRONG[:4]]
    assert [(e.code, e.details["tries_left"]) for e in errs] == [
        ("invalid_code", n) for n in (4, 3, 2, 1)
    ]
    err = await wrong(bank, WRONG[4])
    assert isinstance(err, LockedOut)
    assert (err.code, err.details["retry_after"]) == ("locked_out", 30)
    with pytest.raises(LockedOut) as info:
        await bank.service.submit_code(ann.delivery_code)  # right code, still refused
    assert info.value.details["retry_after"] == 30
    assert bank.doors.pulses["A-1"] == 0
    bank.clock.advance(seconds=29)
    with pytest.raises(LockedOut):
        await bank.service.submit_code(ann.delivery_code)
    bank.clock.advance(seconds=1)
    assert (await bank.service.submit_code(ann.delivery_code)).locker == "A-1"
    limiter = bank.ledger.codes.limiter()  # the run is over; today's count is not
    assert (limiter.consecutive, limiter.locked_until, limiter.day_failures) == (0, None, 5)
    # The good code ended the run: the next wrong code starts again at 4 tries.
    assert (await wrong(bank, WRONG[5])).details["tries_left"] == 4
    assert_sound(bank.ledger)


async def test_a_badly_typed_code_counts_but_an_empty_one_does_not(bank):
    with pytest.raises(BadRequest):
        await bank.service.submit_code("   ")
    assert (await wrong(bank, "12345")).details["tries_left"] == 4
    assert (await wrong(bank, "12a456")).details["tries_left"] == 3


async def test_the_daily_budget_locks_the_site_until_a_reset(bank):
    ann = bank.service.announce(Size.S)
    seen = []
    for n in range(20):
        err = await wrong(bank, f"9{n:05d}")
        seen.append(err.code)
        if isinstance(err, LockedOut):
            bank.clock.advance(seconds=err.details["retry_after"])
    assert seen[:5] == ["invalid_code"] * 4 + ["locked_out"]
    assert seen[-1] == "site_locked" and seen.count("site_locked") == 1
    lockouts = [e for e in bank.ledger.outbox.pending(limit=1000) if e.type == "code.lockout"]
    assert len(lockouts) == 1 and lockouts[0].body["failures"] == 20
    bank.clock.advance(hours=1)
    with pytest.raises(SiteLocked) as info:
        await bank.service.submit_code(ann.delivery_code)
    assert info.value.code == "site_locked"
    with pytest.raises(SiteLocked):
        await bank.service.submit_code(WRONG[0])
    assert len([e for e in bank.ledger.outbox.pending(limit=1000) if e.type == "code.lockout"]) == 1
    bank.service.reset_lockout()
    assert (await bank.service.submit_code(ann.delivery_code)).locker == "A-1"
    audit = [r[0] for r in bank.ledger.conn.execute("SELECT action FROM audit")]
    assert audit.count("code.lockout") == 1 and audit.count("code.lockout_reset") == 1
    assert_sound(bank.ledger)


async def test_a_back_off_survives_a_restart(bank, reopen):
    ann = bank.service.announce(Size.S)
    for code in WRONG[:5]:
        await wrong(bank, code)
    rig = await reopen(bank)
    with pytest.raises(LockedOut) as info:
        await rig.service.submit_code(ann.delivery_code)
    assert info.value.details["retry_after"] == 30
    rig.clock.advance(seconds=30)
    assert (await rig.service.submit_code(ann.delivery_code)).locker == "A-1"
    assert_sound(rig.ledger)


async def test_a_site_lock_survives_a_restart(bank, reopen):
    ann = bank.service.announce(Size.S)
    for n in range(20):
        err = await wrong(bank, f"8{n:05d}")
        if isinstance(err, LockedOut):
            bank.clock.advance(seconds=err.details["retry_after"])
    rig = await reopen(bank)
    with pytest.raises(SiteLocked):
        await rig.service.submit_code(ann.delivery_code)
    rig.service.reset_lockout()
    assert (await rig.service.submit_code(ann.delivery_code)).locker == "A-1"


async def test_a_delivery_code_past_its_deliver_by_has_expired(bank):
    now = bank.clock.now()
    bank.service.create_reservation(
        "P-LATE",
        Size.S,
        code_digest(bank.key, "314159"),
        code_digest(bank.key, "271828"),
        deliver_by=now + timedelta(hours=1),
    )
    bank.clock.advance(hours=1, seconds=1)
    with pytest.raises(CodeExpired) as info:
        await bank.service.submit_code("314159")
    assert info.value.code == "code_expired"
    assert bank.doors.pulses["A-1"] == 0
    assert bank.ledger.parcels.get("P-LATE").status is ParcelStatus.EXPECTED
    assert_sound(bank.ledger)


async def test_a_pickup_code_before_delivery_is_not_yet_delivered(bank):
    ann = bank.service.announce(Size.S)
    with pytest.raises(NotYetDelivered) as info:
        await bank.service.submit_code(ann.pickup_code)
    assert info.value.code == "not_delivered"
    assert sum(bank.doors.pulses.values()) == 0


async def test_a_pickup_code_after_its_window_has_expired_and_the_parcel_stays(bank):
    ann = bank.service.announce(Size.S)
    await bank.service.submit_code(ann.delivery_code)
    bank.doors.close("A-1")
    await bank.service.poll_doors()
    expires = bank.ledger.parcels.get(ann.parcel_id).expires_at
    assert expires == bank.clock.now() + timedelta(days=3)
    bank.clock.current = expires
    with pytest.raises(CodeExpired) as info:
        await bank.service.submit_code(ann.pickup_code)
    assert info.value.code == "code_expired"
    assert bank.doors.pulses["A-1"] == 1  # only the delivery opened it
    bank.service.sweep()
    parcel = bank.ledger.parcels.get(ann.parcel_id)
    assert (parcel.status, parcel.locker) == (ParcelStatus.EXPIRED, "A-1")
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id) == (LockerStatus.OCCUPIED, ann.parcel_id)
    with pytest.raises(CodeExpired):
        await bank.service.submit_code(ann.pickup_code)
    assert_sound(bank.ledger)
