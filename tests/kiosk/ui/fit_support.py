"""Finding text a person cannot read in full: cut off by its box, its parent or the screen."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import App
from textual.widgets import Button, Static
from ui_support import DISPLAYS

#: The kiosk's smallest display (800x480 px) as the web page gives it to the app: its grid
#: of cells (ui_support.DISPLAYS, measured in Chromium by test_web.py).
FIT_SIZE = DISPLAYS["800x480"].grid


def _shown(widget) -> bool:
    return widget.display and all(a.display for a in widget.ancestors_with_self[:-1])


def cut_off(app: App) -> list[str]:
    """Every visible text of the current screen that is not shown whole, with why."""
    screen, problems = app.screen, []
    for widget in screen.query("*"):
        if not _shown(widget) or not widget.region.area:
            continue
        if isinstance(widget, Button):
            text = str(widget.label)
            if cell_len(text) > widget.content_region.width:
                problems.append(f"button {text!r} wider than {widget.content_region.width}")
        elif isinstance(widget, Static) and str(widget.content).strip():
            text = str(widget.content)
            inner = widget.content_region
            need = widget.get_content_height(screen.size, screen.size, inner.width)
            if need > inner.height:
                problems.append(f"{text!r} needs {need} lines, has {inner.height}")
        else:
            continue
        for box in [*widget.ancestors_with_self[1:-1]]:
            if box is app or not hasattr(box, "region"):
                continue
            if not box.region.contains_region(widget.region):
                problems.append(f"{text!r} ({widget.region}) outside {box} ({box.region})")
                break
    return problems
