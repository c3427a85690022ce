"""The technician's `kiosk` commands: each one call (or a few) to the daemon's local API."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kiosk.api.client import ApiClient, ApiError, DaemonUnreachable

EXIT_OK, EXIT_REFUSED, EXIT_NO_DAEMON = 0, 1, 3


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    text = [[str(c) if c is not None else "-" for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in text]
    return "\n".join(line.rstrip() for line in lines)


DaemonOp = Callable[[ApiClient, argparse.Namespace], int]
"""One daemon command: the connected client and the parsed arguments in, an exit code out."""


def with_daemon(
    socket_path: Callable[[argparse.Namespace], str],
) -> Callable[[DaemonOp], Callable[[argparse.Namespace], int]]:
    """Wrap a command so that a missing daemon is exit 3 and a refusal exit 1, clearly said."""

    def wrap(fn: DaemonOp) -> Callable[[argparse.Namespace], int]:
        def run(args: argparse.Namespace) -> int:
            try:
                with ApiClient(socket_path(args)) as client:
                    return fn(client, args)
            except DaemonUnreachable as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_NO_DAEMON
            except ApiError as exc:
                if getattr(args, "json", False):
                    print(json.dumps({"ok": False, "error": exc.error}))
                print(f"error: {exc.error.get('message')} [{exc.code}]", file=sys.stderr)
                return EXIT_REFUSED

        run.__name__ = fn.__name__
        return run

    return wrap


def _emit(args: argparse.Namespace, data: dict[str, Any], human: str) -> int:
    print(json.dumps(data, indent=None if args.json else 2) if args.json else human)
    return EXIT_OK


def status(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("status")
    rows = [
        (
            lk["label"],
            lk["size"],
            lk["status"],
            lk["parcel_id"],
            "check!" if lk.get("needs_check") else "",
        )
        for lk in data["lockers"]
    ]
    head = (
        f"site {data['site']}  cloud {'online' if data['online'] else 'offline'}  "
        f"outbox {data['outbox_depth']}  last contact {data.get('last_contact') or 'never'}"
        + ("  CODE ENTRY LOCKED" if data.get("site_locked") else "")
    )
    return _emit(args, data, head + "\n" + _table(rows, ["locker", "size", "status", "parcel", ""]))


def doors(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("doors")
    rows = [(d["label"], d["door"]) for d in data["doors"]]
    return _emit(args, data, _table(rows, ["locker", "door"]))


def parcels(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("parcels")
    rows = [
        (
            p["parcel_id"],
            p["size"],
            p["status"],
            p["locker"],
            p.get("expires_at"),
            "check!" if p["needs_check"] else "",
        )
        for p in data["parcels"]
    ]
    header = ["parcel", "size", "status", "locker", "expires", ""]
    return _emit(args, data, _table(rows, header))


def announce(client: ApiClient, args: argparse.Namespace) -> int:
    call_args: dict[str, Any] = {"size": args.size}
    if args.parcel_id:
        call_args["parcel_id"] = args.parcel_id
    data = client.call("parcels.announce", **call_args)
    human = (
        f"parcel {data['parcel_id']} (size {data['size']})\n"
        f"  delivery code: {data['delivery_code']}\n  pickup code:   {data['pickup_code']}\n"
        "These codes are shown once; only their digests are kept."
    )
    return _emit(args, data, human)


def code(client: ApiClient, args: argparse.Namespace) -> int:
    try:
        data = client.call("code.submit", code=args.code)
    except ApiError as exc:
        if args.json:
            print(json.dumps({"ok": False, "role": None, "locker": None, "error": exc.error}))
        else:
            print(f"refused: {exc.error.get('message')} [{exc.code}]", file=sys.stderr)
        return EXIT_REFUSED
    data = {
        "ok": True,
        "role": data["role"],
        "locker": data["locker"],
        "parcel_id": data.get("parcel_id"),
        "error": None,
    }
    return _emit(args, data, f"locker {data['locker']} is open ({data['role']})")


def open_door(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("door.open", locker=args.label, reason=args.reason)
    print(f"locker {data['locker']} is open")
    return EXIT_OK


def service(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call(
        "locker.service", locker=args.label, in_service=args.state == "in", reason=args.reason
    )
    print(f"locker {data['label']}: {data['status']}")
    return EXIT_OK


def check(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call(
        "locker.check", locker=args.label, parcel_inside=args.found == "parcel", reason=args.reason
    )
    print(f"locker {data['label']}: {data['status']}, check cleared")
    return EXIT_OK


def audit_tail(client: ApiClient, args: argparse.Namespace) -> int:
    data = client.call("audit.tail", n=args.n)
    rows = [
        (r["id"], r["ts"], r["actor"], r["action"], r["subject"], r["detail"]) for r in data["rows"]
    ]
    return _emit(args, data, _table(rows, ["#", "time", "actor", "action", "subject", "detail"]))


def selftest(client: ApiClient, args: argparse.Namespace) -> int:
    """Door by door, so the bar moves as each sensor is read."""
    labels = [lk["label"] for lk in client.call("status")["lockers"]]
    total, faults = len(labels), 0
    for index, label in enumerate(labels, 1):
        door = client.call("selftest", locker=label)["doors"][0]
        faults += not door["ok"]
        bar = "#" * (20 * index // total)
        verdict = "ok" if door["ok"] else "FAULT"
        inside = "/".join(door.get("presence") or [])
        if inside and inside != "none":  # a presence sensor is fitted
            verdict = f"inside {inside} {verdict}"
        if door.get("presence_problem"):
            verdict += f": presence sensor {door['presence_problem']}"
        print(f"[{bar:<20}] {index}/{total} {label}: {'/'.join(door['readings'])} {verdict}")
    print("self-test passed" if not faults else f"self-test found {faults} fault(s)")
    return EXIT_OK if not faults else EXIT_REFUSED


def backup(client: ApiClient, args: argparse.Namespace) -> int:
    # The daemon has its own working directory: a relative DEST means the caller's.
    dest = os.path.abspath(args.dest)
    data = client.call("backup", dest=dest)
    print(f"backup written to {data['dest']} ({data['bytes']} bytes)")
    return EXIT_OK


def lockout_reset(client: ApiClient, args: argparse.Namespace) -> int:
    client.call("lockout.reset")
    print("code and PIN entry reopened")
    return EXIT_OK
