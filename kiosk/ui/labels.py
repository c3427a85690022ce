"""Door labels proposed while mapping a bank: the next one in the bank's naming, and steps.

A bank's doors are named column letter and row number, `A-1` down to `A-4`, then
`B-1`, or `B12` (the daemon reads the same labels for the picture of the bank).
While a technician maps a new bank by touch, the screen proposes the label after
the last one (`A-4` -> `A-5`), and steps its column letter or row number on a tap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LABEL = re.compile(r"([A-Za-z]{1,2})-?(\d{1,3})")

#: The first door of a bank whose doors have no column-and-row labels yet.
FIRST = "A-1"


def letters(column: int) -> str:
    """1=A ... 26=Z, 27=AA: a column number as a label's letters."""
    out = ""
    while column > 0:
        column, rest = divmod(column - 1, 26)
        out = chr(ord("A") + rest) + out
    return out


def from_label(text: str) -> tuple[int, int] | None:
    """(column, row) of a label like A-1 or B12 (column A = 1); None if it is not one."""
    match = _LABEL.fullmatch(text)
    if match is None:
        return None
    column = 0
    for ch in match[1].upper():
        column = column * 26 + (ord(ch) - ord("A") + 1)
    return column, int(match[2])


def label(column: int, row: int) -> str:
    return f"{letters(max(1, column))}-{max(1, row)}"


def step(current: str, columns: int = 0, rows: int = 0) -> str:
    """`current` with its column moved by `columns` (a new column starts at row 1) and its
    row by `rows`; a label that is not column-and-row steps from FIRST."""
    place = from_label(current.strip()) or from_label(FIRST)
    assert place is not None
    column, row = place
    if columns:
        return label(column + columns, 1)
    return label(column, row + rows)


def following(labels: Iterable[str]) -> str:
    """The label after the last of `labels` in the bank's naming: the same column, the next
    row, after the highest column-and-row label (FIRST when there is none)."""
    places = [p for p in (from_label(lb) for lb in labels) if p is not None]
    if not places:
        return FIRST
    column, row = max(places)
    return label(column, row + 1)


def after(last: str, labels: Iterable[str]) -> str:
    """The next door's label: after `last` (the door just mapped) when it is column-and-row,
    else after the bank's highest; never one of `labels` (taken)."""
    taken = {lb.upper() for lb in labels}
    proposal = step(last, rows=1) if from_label(last) else following(taken)
    while proposal.upper() in taken:
        proposal = step(proposal, rows=1)
    return proposal
