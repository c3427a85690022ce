"""`kiosk ui --web`: the same keypad app served to a browser by textual-serve (one app per tab)."""

from __future__ import annotations

import ipaddress
import shlex
import socket
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


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one (127.0.0.0/8, ::1).

    "" and 0.0.0.0 / :: mean every interface; a name that does not resolve is
    taken as reachable (it cannot be shown to be loopback).
    """
    if not host:
        return False
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in found}
    return bool(addresses) and all(address.is_loopback for address in addresses)


def exposure_warning(host: str, port: int) -> str | None:
    """The one-line warning for a screen served beyond this machine, or None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"warning: kiosk ui --web on {host or 'every interface'}:{port}: the keypad screen "
        "is then reachable from the network, and whoever loads the page has a keypad; "
        "serve it on 127.0.0.1 (the default, localhost) unless that network is trusted"
    )


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
