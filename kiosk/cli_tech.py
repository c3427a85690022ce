"""`kiosk tech list|remove` and reading a new PIN (asked twice, or one line of stdin)."""

from __future__ import annotations

import argparse
import json
import sys

from kiosk.api.client import ApiClient
from kiosk.cli_ops import EXIT_OK, EXIT_REFUSED, _table


def read_pin(args: argparse.Namespace) -> str | None:
    """The new PIN: the first line of stdin with --pin-stdin, else asked twice on the tty.

    None (after one line saying why) when there is none to take.
    """
    if args.pin_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            print(
                "error: --pin-stdin: no PIN on standard input (give it as one line)",
                file=sys.stderr,
            )
            return None
        return line
    import getpass

    from kiosk.domain.pins import PIN_MAX, PIN_MIN

    pin = getpass.getpass(f"new PIN for {args.technician_id} ({PIN_MIN}-{PIN_MAX} digits): ")
    if getpass.getpass("again: ") != pin:
        print("error: the two PINs differ; run it again", file=sys.stderr)
        return None
    return pin


def tech_list(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("tech.list")
    if args.json:
        print(json.dumps(data))
        return EXIT_OK
    rows = [(t["name"], t["created"], t["last_login"] or "never") for t in data["technicians"]]
    print(_table(rows, ["name", "created", "last login"]) if rows else "no technicians")
    return EXIT_OK


def tech_remove(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("tech.remove", technician_id=args.name)
    closed = data.get("sessions_closed", 0)
    print(
        f"technician {data['technician_id']} removed"
        + (f" ({closed} session(s) closed)" if closed else "")
    )
    return EXIT_OK


def set_pin(client: ApiClient, args: argparse.Namespace) -> int:
    pin = read_pin(args)
    if pin is None:
        return EXIT_REFUSED
    client.call("tech.set_pin", technician_id=args.technician_id, pin=pin)
    print(f"PIN set for {args.technician_id}")
    return EXIT_OK
