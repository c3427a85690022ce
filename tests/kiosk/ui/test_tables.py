"""The maintenance screen's tables: a column widened by a new row widens its header too."""

from __future__ import annotations

import re

from textual.app import App, ComposeResult

from kiosk.ui.tables import TapTable


class Tables(App[None]):
    #: A table whose size a new row does not change, as the technician's grid (1fr wide)
    #: once its page is full. A table that grows by the new row is resized, and DataTable
    #: drops every line it kept on a resize: there the stale header never shows, and this
    #: test passed without the fix until its table had a fixed size.
    CSS = "TapTable { width: 40; height: 6; }"

    def compose(self) -> ComposeResult:
        yield TapTable(id="t")


def shown_at(app: App[None], word: str) -> list[str]:
    """Where the screen shows `word`: the x of each place (the SVG of a screenshot)."""
    return re.findall(rf'x="([\d.]+)"[^>]*>&#160;{word}', app.export_screenshot())


async def test_a_header_drawn_before_its_rows_follows_the_widened_columns():
    """DataTable widens a column when it is idle after a new row, and kept the header
    lines drawn in between at the old widths: the technician's grid showed its header
    out of line with the rows (seen in a snapshot on a loaded machine)."""
    app = Tables()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(TapTable)
        table.add_column("Status", key="status")
        table.add_column("Door", key="door")
        await pilot.pause()
        table.add_row("occupied", "shut", key="C-1")
        early = shown_at(app, "Door")  # the screen drawn before the table is idle again
        await pilot.pause()
        door, shut = shown_at(app, "Door"), shown_at(app, "shut")
        assert len(door) == len(shut) == 1, (door, shut)  # the header and the row both show
        assert door == shut
        # The case itself: "occupied" widened the Status column after the header was drawn.
        assert early != door, "the header was not drawn at the old widths: nothing was proved"
