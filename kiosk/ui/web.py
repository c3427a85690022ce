"""`kiosk ui --web`: the same keypad app served to a browser by textual-serve (one app per tab)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence


def ui_command(config: str, extra: Sequence[str] = ()) -> str:
    """The shell command textual-serve starts for each browser connection."""
    argv = [sys.executable, "-m", "kiosk", "ui", "--config", config, *extra]
    return shlex.join(argv)


def serve(config: str, host: str, port: int, extra: Sequence[str] = ()) -> int:
    """Serve until SIGINT/SIGTERM. Bind to localhost unless the network is trusted."""
    from textual_serve.server import Server

    Server(ui_command(config, extra), host=host, port=port, title="locker-kiosk").serve()
    return 0
