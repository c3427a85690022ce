"""The maintenance screen's tables, sized for a finger: rows two cells tall, lit while touched."""

from __future__ import annotations

from textual import events
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from kiosk.ui.widgets import TapFeedback

#: A row's height in cells: 48 px and more on the page's cells (docs/ui.md, "Touch").
ROW_HEIGHT = 2


class TapTable(TapFeedback, DataTable[str]):
    """A DataTable whose rows a technician taps (and drags to scroll) on the touch screen.

    Every row is ROW_HEIGHT cells tall. The row under a finger turns amber from the
    moment it is down (`-pressed` on the table, `-on-cursor` when it is the chosen
    row already), like every key and button. A finger that scrolls the table (a drag:
    the page turns it into mouse-wheel steps) chooses nothing when it lifts.
    """

    def __init__(self, *, id: str | None = None, zebra_stripes: bool = False) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=zebra_stripes)
        self._scrolled = False
        self._widths: tuple[int, ...] = ()

    async def _on_idle(self, event: events.Idle) -> None:
        await super()._on_idle(event)
        self._redraw_if_widened()

    def _redraw_if_widened(self) -> None:
        """Columns widened (DataTable measures new rows when idle): draw everything anew.

        DataTable keeps the lines it drew, keyed by its update count, and widening the
        columns when idle does not count as an update: a header drawn between a new row
        and that idle moment kept the old widths (the header out of line with the rows,
        seen in the technician's grid) until the next change of a cell.
        """
        widths = tuple(column.content_width for column in self.columns.values())
        if widths != self._widths:
            self._widths = widths
            self.notify_style_update()  # DataTable drops every line it kept
            self.refresh()

    def add_row(
        self,
        *cells: str,
        height: int | None = ROW_HEIGHT,
        key: str | None = None,
        label: str | None = None,
    ) -> RowKey:
        return super().add_row(*cells, height=height, key=key, label=label)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._scrolled = False
        row = event.style.meta.get("row")
        if isinstance(row, int) and row >= 0:  # a row, not the header
            self.hover_coordinate = Coordinate(row, self.hover_coordinate.column)
            self.set_class(row == self.cursor_row, "-on-cursor")

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scrolled = True

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scrolled = True

    def on_click(self, event: events.Click) -> None:
        if self._scrolled:  # the end of a drag that scrolled: not a choice
            self._scrolled = False
            event.prevent_default()
            event.stop()
