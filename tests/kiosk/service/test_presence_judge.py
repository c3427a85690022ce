"""judge_presence: what a sweep of one presence sensor says of it (pure, no bank)."""

from kiosk.domain.status import LockerStatus
from kiosk.service.presence import judge_presence


def test_occupied_in_a_free_locker_is_a_fault():
    check = judge_presence("A-1", LockerStatus.AVAILABLE, False, [True, True, True])
    assert not check.ok and "stuck" in check.problem and check.readings == ("occupied",)


def test_empty_while_holding_a_parcel_is_a_fault():
    check = judge_presence("A-1", LockerStatus.OCCUPIED, True, [False, False])
    assert not check.ok and "holds a parcel" in check.problem


def test_a_flickering_sensor_is_a_fault_and_agreeing_ones_are_fine():
    assert "flickers" in judge_presence("A-1", LockerStatus.OCCUPIED, True, [True, False]).problem
    assert judge_presence("A-1", LockerStatus.OCCUPIED, True, [True, True]).ok
    assert judge_presence("A-1", LockerStatus.AVAILABLE, False, [False]).ok
    assert judge_presence("A-1", LockerStatus.AVAILABLE, False, [None, None]).ok
