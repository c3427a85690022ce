"""A board that does not answer an unlock: the person is told at once, and no pulse comes late.

Through the real service and the simulated Modbus board over a real pty
(support.rig, "modbus"): unit 1 (A-1, A-2, A-10, B-1) is unplugged. The
outcome must come from the bus's own retries, before any door-open wait: the
test shows that by the frames on the line (no door read of the board while the
code is handled), not by a stopwatch.
"""

from __future__ import annotations

import asyncio

import pytest

from kiosk.domain.errors import HardwareError
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus

pytestmark = pytest.mark.backends("modbus", reason="a silent board exists only on a Modbus line")

FC_READ_COILS, FC_READ_DOORS, FC_WRITE_COIL = 1, 2, 5


def unit_frames(bank, unit: int, since: int) -> list[tuple[int | None, str]]:
    return [(f.function_code, f.outcome) for f in list(bank.sim.frames)[since:] if f.unit == unit]


def board_online(bank, unit: int) -> bool:
    (info,) = [b for b in bank.lock_bank.describe() if b.unit == unit]
    return info.online


@pytest.mark.bus_silence
async def test_an_unlock_on_a_dead_board_fails_before_any_door_wait_and_never_pulses_late(bank):
    await bank.service.supervise()  # the doors' baseline
    bank.sim[1].silent = True
    ann = bank.service.announce(Size.S)
    since = len(bank.sim.frames)
    with pytest.raises(HardwareError) as info:
        await bank.service.submit_code(ann.delivery_code)
    assert info.value.code == "hardware_error" and info.value.details["locker"] == "A-1"
    during = unit_frames(bank, 1, since)
    # One unlock frame and the bus's read-backs of its coil (its retries); then the answer.
    assert [code for code, _ in during] == [FC_WRITE_COIL, FC_READ_COILS, FC_READ_COILS]
    assert FC_READ_DOORS not in [code for code, _ in during]  # no door-open wait was entered
    assert not board_online(bank, 1)  # the maintenance screen's "board offline"
    # Nothing changed: the locker is free again, the parcel still expected.
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id, locker.needs_check) == (
        LockerStatus.AVAILABLE,
        None,
        False,
    )
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert bank.ledger.doors.unfinished() == []

    # The board comes back: supervision reads it again, and no pulse ever reaches it.
    after = len(bank.sim.frames)
    bank.sim[1].silent = False
    for _ in range(400):
        await bank.service.supervise()
        if board_online(bank, 1):
            break
        await asyncio.sleep(0.005)
    assert board_online(bank, 1)
    for _ in range(3):
        await bank.service.supervise()
    assert FC_WRITE_COIL not in [code for code, _ in unit_frames(bank, 1, after)]
    assert bank.doors.pulses["A-1"] == 0 and not bank.doors.is_open("A-1")
