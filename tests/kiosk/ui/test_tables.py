"""The maintenance screen's tables: a column widened by a new row widens its header too."""

from __future__ import annotations

import re

from textual.app import App, ComposeResult

from kiosk.ui.tables import TapTable


class Tables(App[None]):
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
        shown_at(app, "Door")  # the screen drawn before the table is idle again
        await pilot.pause()
        assert shown_at(app, "Door") == shown_at(app, "shut")
