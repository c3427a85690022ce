"""Which locker a parcel gets: the smallest free locker that fits, then label in natural order."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kiosk.domain.sizes import Size

_CHUNK = re.compile(r"(\d+)")


def natural_key(label: str) -> str:
    """A sort key that orders labels naturally (A-2 before A-10), as a plain string.

    Digit runs are zero-padded to 10 places so that SQLite's text ordering of
    the key is the natural order: the ledger indexes it and sorts in SQL.
    """
    parts = _CHUNK.split(label.upper())
    return "".join(p.zfill(10) if p.isdigit() else p for p in parts)


@dataclass(frozen=True)
class Candidate:
    label: str
    size: Size


def choose_locker(parcel_size: Size, free: Iterable[Candidate]) -> Candidate | None:
    """The reference rule, in Python (the ledger does the same in one indexed query).

    Exact size first, then the next size up; within a size, natural label order.
    """
    fitting = [c for c in free if c.size.fits(parcel_size)]
    if not fitting:
        return None
    return min(fitting, key=lambda c: (c.size.rank, natural_key(c.label)))
