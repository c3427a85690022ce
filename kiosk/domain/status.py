"""Locker and parcel statuses and the moves docs/contracts/states.md allows."""

from __future__ import annotations

import enum

from kiosk.domain.errors import InvalidState


class LockerStatus(enum.Enum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"  # held for one courier drop (at most hold_minutes)
    OCCUPIED = "OCCUPIED"  # a parcel is inside
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


class ParcelStatus(enum.Enum):
    EXPECTED = "EXPECTED"  # announced, on its way to the bank
    DELIVERED = "DELIVERED"  # in a locker
    PICKED_UP = "PICKED_UP"
    EXPIRED = "EXPIRED"  # pickup window over, still physically inside
    RETURNED = "RETURNED"  # collected by a courier
    CANCELLED = "CANCELLED"


#: Parcel statuses in which the parcel may be physically inside a locker.
PARCEL_INSIDE = frozenset({ParcelStatus.DELIVERED, ParcelStatus.EXPIRED})
#: Parcel statuses that end a parcel's life at this bank.
PARCEL_FINAL = frozenset({ParcelStatus.PICKED_UP, ParcelStatus.RETURNED, ParcelStatus.CANCELLED})

_LOCKER_MOVES: dict[LockerStatus, frozenset[LockerStatus]] = {
    LockerStatus.AVAILABLE: frozenset({LockerStatus.RESERVED, LockerStatus.OUT_OF_SERVICE}),
    LockerStatus.RESERVED: frozenset(
        {LockerStatus.AVAILABLE, LockerStatus.OCCUPIED, LockerStatus.OUT_OF_SERVICE}
    ),
    LockerStatus.OCCUPIED: frozenset({LockerStatus.AVAILABLE, LockerStatus.OUT_OF_SERVICE}),
    # Back in service: AVAILABLE only once known empty, OCCUPIED when a parcel is recorded inside.
    LockerStatus.OUT_OF_SERVICE: frozenset({LockerStatus.AVAILABLE, LockerStatus.OCCUPIED}),
}

_PARCEL_MOVES: dict[ParcelStatus, frozenset[ParcelStatus]] = {
    ParcelStatus.EXPECTED: frozenset({ParcelStatus.DELIVERED, ParcelStatus.CANCELLED}),
    ParcelStatus.DELIVERED: frozenset({ParcelStatus.PICKED_UP, ParcelStatus.EXPIRED}),
    ParcelStatus.EXPIRED: frozenset({ParcelStatus.RETURNED}),
    ParcelStatus.PICKED_UP: frozenset(),
    ParcelStatus.RETURNED: frozenset(),
    ParcelStatus.CANCELLED: frozenset(),
}


def check_locker_move(old: LockerStatus, new: LockerStatus) -> None:
    """Raise InvalidState unless docs/contracts/states.md lets a locker go old -> new."""
    if new not in _LOCKER_MOVES[old]:
        raise InvalidState(f"A locker cannot go from {old.value} to {new.value}.")


def check_parcel_move(old: ParcelStatus, new: ParcelStatus) -> None:
    """Raise InvalidState unless docs/contracts/states.md lets a parcel go old -> new."""
    if new not in _PARCEL_MOVES[old]:
        raise InvalidState(f"A parcel cannot go from {old.value} to {new.value}.")
