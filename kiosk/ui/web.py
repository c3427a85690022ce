"""`kiosk ui --web`: the same keypad app served to a browser by textual-serve (one app per tab)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

#: The page served in place of textual-serve's stock one: it sizes the font to the display.
PAGE_DIR = Path(__file__).with_name("page")
#: The least grid (columns, rows) the page gives the app on any display; the page's
#: GRID_COLS and GRID_ROWS say the same (tests/kiosk/ui/test_web.py checks they agree).
GRID = (48, 20)


def ui_command(config: str, extra: Sequence[str] = ()) -> str:
    """The shell command textual-serve starts for each browser connection."""
    argv = [sys.executable, "-m", "kiosk", "ui", "--config", config, *extra]
    return shlex.join(argv)


def serve(config: str, host: str, port: int, extra: Sequence[str] = ()) -> int:
    """Serve until SIGINT/SIGTERM. Bind to localhost unless the network is trusted."""
    from textual_serve.server import Server

    Server(
        ui_command(config, extra),
        host=host,
        port=port,
        title="locker-kiosk",
        templates_path=PAGE_DIR,  # absolute: textual-serve's own statics stay as they are
    ).serve()
    return 0
