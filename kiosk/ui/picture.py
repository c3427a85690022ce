"""A picture of the bank's front: every compartment in its place, the open one highlighted."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from kiosk.ui.widgets import texts_of

#: Cells a compartment's label gets at most (labels are at most 16 characters; the
#: picture trims longer ones so a wide bank still fits the screen).
CELL_MAX = 5


def draw(cells: list[dict[str, Any]], open_label: str, here: str) -> Text:
    """Rows of `[A-1]` boxes, one text line per grid row; `open_label`'s box in reverse
    amber, and `here` (e.g. "◀ A-1") beside its first line."""
    if not cells:
        return Text("")
    width = min(CELL_MAX, max(len(str(c["label"])) for c in cells))
    columns = sorted({int(c["column"]) for c in cells})
    bottom = max(int(c["row"]) + int(c.get("rows", 1)) - 1 for c in cells)
    top = min(int(c["row"]) for c in cells)
    grid: dict[tuple[int, int], tuple[str, bool]] = {}
    for c in cells:
        rows = int(c.get("rows", 1))
        for r in range(int(c["row"]), int(c["row"]) + rows):
            first = r == int(c["row"])
            grid[(int(c["column"]), r)] = (str(c["label"]) if first else "", first)
    out = Text()
    for r in range(top, bottom + 1):
        marked = False
        for col in columns:
            label, first = grid.get((col, r), ("", False))
            owner = label or _owner(cells, col, r)
            box = f"[{label[:width]:^{width}}]" if (col, r) in grid else " " * (width + 2)
            if owner == open_label and owner:
                out.append(box, style="bold #000000 on #ffd400")
                marked = marked or bool(label)
            else:
                out.append(box, style="#d0d0d0" if (col, r) in grid else "")
            out.append(" ")
        if marked:
            out.append(here, style="bold #ffd400")
        if r < bottom:
            out.append("\n")
    return out


def _owner(cells: list[dict[str, Any]], column: int, row: int) -> str:
    """The label of the tall compartment covering (column, row), if any."""
    for c in cells:
        start, rows = int(c["row"]), int(c.get("rows", 1))
        if int(c["column"]) == column and start <= row < start + rows:
            return str(c["label"])
    return ""


class BankPicture(Static):
    """The grid of compartments (the daemon's `layout`), showing one locker as open."""

    def __init__(self, *, id: str | None = None, classes: str = "") -> None:
        super().__init__("", id=id, classes=classes)
        self.cells: list[dict[str, Any]] = []
        self.open_label = ""

    def show(self, cells: list[dict[str, Any]], open_label: str) -> None:
        self.cells, self.open_label = cells, open_label
        self.display = bool(cells) and any(c["label"] == open_label for c in cells)
        self.relabel()

    def relabel(self) -> None:
        here = texts_of(self).t("open.here", locker=self.open_label)
        self.update(draw(self.cells, self.open_label, here))
