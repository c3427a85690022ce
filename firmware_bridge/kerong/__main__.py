"""`python -m firmware_bridge.kerong`: simulated KR-CU boards on a pty until SIGINT or SIGTERM.

The first line on stdout is the pty's path (or --link), flushed at once, so a
script can read it and start `kiosk run` on a config whose kerong-cu bus has
that `port`. Doors shut themselves --auto-close seconds after an unlock.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from firmware_bridge.kerong import codec
from firmware_bridge.kerong.sim import SimKerongBoard, SimKerongLine, serve_kerong_pty


def _addresses(text: str) -> list[int]:
    try:
        found = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected addresses like 0,1,2, got {text!r}") from None
    if not found or any(not 0 <= a <= codec.MAX_BOARD for a in found):
        raise argparse.ArgumentTypeError(f"addresses must be 0..{codec.MAX_BOARD}, got {text!r}")
    return sorted(set(found))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_bridge.kerong",
        description="Simulated Kerong KR-CU boards on a new pseudo-terminal (19200 8N1).",
    )
    parser.add_argument("--boards", type=_addresses, default=[0], help="addresses, e.g. 0,1")
    parser.add_argument(
        "--locks", type=int, choices=range(1, 17), default=16, metavar="1-16", help="per board"
    )
    parser.add_argument("--baudrate", type=int, default=19200, help="line speed (8N1)")
    parser.add_argument("--link", metavar="PATH", help="also symlink PATH to the pty")
    parser.add_argument(
        "--auto-close", type=float, default=3.0, metavar="S", help="doors shut S s after unlock"
    )
    parser.add_argument(
        "--occupied", type=_addresses, default=[], help="locks whose IR sensor sees a parcel"
    )
    return parser


async def _serve(args: argparse.Namespace) -> int:
    boards = [
        SimKerongBoard(
            a, args.locks, occupied=set(args.occupied), auto_close_s=args.auto_close or None
        )
        for a in args.boards
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    link = await serve_kerong_pty(SimKerongLine(boards), baudrate=args.baudrate, link=args.link)
    print(link.path, flush=True)
    where = ", ".join(map(str, args.boards))
    print(f"Kerong KR-CU {args.baudrate} 8N1, boards {where}; Ctrl-C stops", file=sys.stderr)
    await stop.wait()
    await link.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_serve(args))
    except (OSError, ValueError) as exc:  # the link path is not writable, no such baud rate
        print(f"python -m firmware_bridge.kerong: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
