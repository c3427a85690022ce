"""Where each compartment sits in the bank's front: the grid the keypad draws when a door opens.

A locker's place comes from its optional config keys `column`, `row` and `rows`
(a tall compartment spans `rows` rows from `row` down); without them it is read
from a label like `A-1` or `B12` (column A = 1, row 1). Lockers with neither
fill a column of their own to the right, in config order. Columns and rows
count from 1 at the top left, as a person facing the bank sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

_LABEL = re.compile(r"([A-Za-z]{1,2})-?(\d{1,3})")


class Placed(Protocol):
    label: str
    column: int | None
    row: int | None
    rows: int


@dataclass(frozen=True)
class Cell:
    label: str
    column: int
    row: int
    rows: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def column_number(letters: str) -> int:
    """A=1 ... Z=26, AA=27: the column a label's letters name."""
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ord(ch) - ord("A") + 1)
    return number


def from_label(label: str) -> tuple[int, int] | None:
    """(column, row) read from a label like A-1 or B12; None if it is not one."""
    match = _LABEL.fullmatch(label)
    if match is None:
        return None
    return column_number(match[1]), int(match[2])


def spot(lk: Placed) -> tuple[int, int] | None:
    """(column, row) of a locker's top cell from its keys or label; None: it has neither."""
    guess = from_label(lk.label)
    column = lk.column if lk.column is not None else (guess[0] if guess else None)
    row = lk.row if lk.row is not None else (guess[1] if guess else None)
    return None if column is None or row is None else (column, row)


def place(lockers: Iterable[Placed]) -> tuple[Cell, ...]:
    """Every locker's cell in the bank's front."""
    cells: list[Cell] = []
    loose: list[Placed] = []
    for lk in lockers:
        found = spot(lk)
        if found is None:
            loose.append(lk)
        else:
            cells.append(Cell(lk.label, found[0], found[1], lk.rows))
    spare = max((c.column for c in cells), default=0) + 1
    top = 1
    for lk in loose:
        cells.append(Cell(lk.label, spare, top, lk.rows))
        top += lk.rows
    return tuple(cells)
