"""Sizes (order, fit, parse) and every transition of the locker and parcel state machines."""

from itertools import product

import pytest

from kiosk.domain.errors import InvalidState
from kiosk.domain.sizes import Size
from kiosk.domain.status import (
    LockerStatus,
    ParcelStatus,
    check_locker_move,
    check_parcel_move,
)

L, P = LockerStatus, ParcelStatus

#: docs/contracts/states.md, written out by hand: the only moves allowed.
LOCKER_ALLOWED = {
    (L.AVAILABLE, L.RESERVED),
    (L.RESERVED, L.OCCUPIED),
    (L.RESERVED, L.AVAILABLE),  # courier cancel, "doesn't fit", hold expired
    (L.OCCUPIED, L.AVAILABLE),  # picked up or collected
    (L.AVAILABLE, L.OUT_OF_SERVICE),
    (L.RESERVED, L.OUT_OF_SERVICE),
    (L.OCCUPIED, L.OUT_OF_SERVICE),
    (L.OUT_OF_SERVICE, L.AVAILABLE),  # back in service, known empty
    (L.OUT_OF_SERVICE, L.OCCUPIED),  # back in service, a parcel recorded inside
}
PARCEL_ALLOWED = {
    (P.EXPECTED, P.DELIVERED),
    (P.EXPECTED, P.CANCELLED),
    (P.DELIVERED, P.PICKED_UP),
    (P.DELIVERED, P.EXPIRED),
    (P.EXPIRED, P.RETURNED),
}


def test_sizes_are_ordered_small_to_large():
    assert [s.rank for s in (Size.S, Size.M, Size.L)] == [0, 1, 2]
    assert sorted(Size, key=lambda s: s.rank) == [Size.S, Size.M, Size.L]


@pytest.mark.parametrize(("locker", "parcel"), list(product(Size, Size)))
def test_a_locker_fits_a_parcel_of_its_size_or_smaller(locker, parcel):
    order = "SML"
    assert locker.fits(parcel) is (order.index(locker.value) >= order.index(parcel.value))


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("S", Size.S),
        ("m", Size.M),
        (" L ", Size.L),
        ("small", Size.S),
        ("MEDIUM", Size.M),
        ("Large", Size.L),
    ],
)
def test_parse_accepts_letters_and_the_long_words_in_any_case(text, size):
    assert Size.parse(text) is size


@pytest.mark.parametrize("text", ["", "XL", "SM", "huge", "0"])
def test_parse_refuses_anything_else_naming_the_choices(text):
    with pytest.raises(ValueError, match="S, M or L"):
        Size.parse(text)


@pytest.mark.parametrize(("old", "new"), list(product(LockerStatus, LockerStatus)))
def test_every_locker_transition_is_allowed_or_refused_as_designed(old, new):
    if (old, new) in LOCKER_ALLOWED:
        check_locker_move(old, new)
    else:
        with pytest.raises(InvalidState) as info:
            check_locker_move(old, new)
        assert info.value.code == "invalid_state"
        assert old.value in info.value.message and new.value in info.value.message


@pytest.mark.parametrize(("old", "new"), list(product(ParcelStatus, ParcelStatus)))
def test_every_parcel_transition_is_allowed_or_refused_as_designed(old, new):
    if (old, new) in PARCEL_ALLOWED:
        check_parcel_move(old, new)
    else:
        with pytest.raises(InvalidState) as info:
            check_parcel_move(old, new)
        assert info.value.code == "invalid_state"


def test_the_tables_above_cover_real_states():
    assert len(LOCKER_ALLOWED) == 9 and len(PARCEL_ALLOWED) == 5
    assert {s for pair in PARCEL_ALLOWED for s in pair} == set(ParcelStatus)
    assert {s for pair in LOCKER_ALLOWED for s in pair} == set(LockerStatus)
