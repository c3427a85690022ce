"""A picture of the bank's front: every compartment in its place, the open one highlighted."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import Static

from kiosk.ui.widgets import texts_of

#: Cells a compartment's label gets at most (labels are at most 16 characters; the
#: picture trims longer ones so a wide bank still fits the screen).
CELL_MAX = 5


def draw(cells: list[dict[str, Any]], open_label: str, here: str, lines: int = 0) -> Text:
    """Rows of `[A-1]` boxes, one text line per grid row; `open_label`'s box in reverse
    amber, and `here` (e.g. "◀ A-1") beside its first line.

    `lines` (if set) is the most text lines the picture may take: a bank with more rows
    is drawn in bands of several rows a line (a box per column and band, named only if
    one door fills it), so the open door stays highlighted in its place.
    """
    if not cells:
        return Text("")
    width = min(CELL_MAX, max(len(str(c["label"])) for c in cells))
    columns = sorted({int(c["column"]) for c in cells})
    bottom = max(int(c["row"]) + int(c.get("rows", 1)) - 1 for c in cells)
    top = min(int(c["row"]) for c in cells)
    band = -(-(bottom - top + 1) // lines) if lines > 0 else 1
    out = Text()
    for first_row in range(top, bottom + 1, band):
        rows = range(first_row, min(first_row + band, bottom + 1))
        marked = False
        for col in columns:
            covering = [c for c in cells if int(c["column"]) == col and _spans(c, rows)]
            starts = [c for c in covering if int(c["row"]) in rows]
            opened = any(str(c["label"]) == open_label for c in covering) and open_label
            if opened:
                named = any(str(c["label"]) == open_label for c in starts)
                label = open_label if named else ""
            else:
                label = str(starts[0]["label"]) if len(covering) == 1 and starts else ""
            box = f"[{label[:width]:^{width}}]" if covering else " " * (width + 2)
            if opened:
                out.append(box, style="bold #000000 on #ffd400")
                marked = marked or bool(label)
            else:
                out.append(box, style="#d0d0d0" if covering else "")
            out.append(" ")
        if marked:
            out.append(here, style="bold #ffd400")
        if rows[-1] < bottom:
            out.append("\n")
    return out


def _spans(cell: dict[str, Any], rows: range) -> bool:
    """The compartment covers at least one of `rows`."""
    start = int(cell["row"])
    return start <= rows[-1] and rows[0] < start + int(cell.get("rows", 1))


class BankPicture(Static):
    """The grid of compartments (the daemon's `layout`), showing one locker as open.

    It takes the height its screen leaves it (kiosk.tcss `.picture`) and draws the
    bank in as many lines as that gives, so the buttons below it stay on screen.
    """

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
        self.update(draw(self.cells, self.open_label, here, self.size.height))

    def on_resize(self, event: events.Resize) -> None:
        """The height left to the picture changed: draw the bank again to fit it."""
        self.relabel()
