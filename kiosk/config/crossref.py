"""What the loader's second pass needs beyond the tables themselves.

`Unloaded` remembers the tables that did not load, so that a check that would
look for one is left out rather than reported; `cell_clashes` finds two
lockers in one cell of the bank's picture.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kiosk.config.model import LockerConfig
from kiosk.domain.layout import spot

#: Stands for a table that did not load and whose name could not be read either.
_UNKNOWN = object()


class Unloaded:
    """Each [[bus]] that did not load by its `name`, each [[board]] by its `bus`, as written."""

    def __init__(self) -> None:
        self._names: dict[str, list[object]] = {}

    def note(self, section: str, table: object = None) -> None:
        """A [[section]] (`table` as written), or a whole section (no table), did not load."""
        name = table.get("name" if section == "bus" else "bus") if isinstance(table, dict) else None
        self._names.setdefault(section, []).append(name if isinstance(name, str) else _UNKNOWN)

    def may_be(self, section: str, name: str) -> bool:
        """Whether a [[section]] that did not load may be the one `name` refers to."""
        return any(n is _UNKNOWN or n == name for n in self._names.get(section, ()))


def cell_clashes(lockers: Sequence[LockerConfig], skip: set[int]) -> Iterator[tuple[int, str, str]]:
    """(locker index, key, reason) for each locker placed where an earlier one is.

    A tall compartment takes each of its `rows`; the key named is the later
    locker's `row`, else `column`, else `label` (what placed it). Lockers in
    `skip` (a duplicate label, already an error) are left out.
    """
    cells: dict[tuple[int, int], int] = {}
    for i, locker in enumerate(lockers):
        place = spot(locker)
        if place is None or i in skip:
            continue  # no place: a column of its own, right of the rest
        column, row = place
        wanted = [(column, r) for r in range(row, row + locker.rows)]
        taken = next((cell for cell in wanted if cell in cells), None)
        if taken is None:
            cells.update(dict.fromkeys(wanted, i))
            continue
        key = (
            "row" if locker.row is not None else "column" if locker.column is not None else "label"
        )
        other = cells[taken]
        yield (
            i,
            key,
            (
                f"column {taken[0]}, row {taken[1]} is already taken by locker[{other}] "
                f"({lockers[other].label}); give it a free column and row"
            ),
        )
