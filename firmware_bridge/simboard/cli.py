"""`kiosk simulate board`: serve simulated lock boards on a pty or a TCP port until stopped.

The first line on stdout is the device path (--pty) or HOST:PORT (--tcp),
flushed at once, so a script can read it and connect; everything else goes to
stderr. Doors behave normally and shut themselves --auto-close seconds after
springing open, so a person can watch a bank work. SIGINT or SIGTERM stops
it with exit status 0; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import termios
from collections.abc import Callable, Sequence

from firmware_bridge.simboard.board import MAX_CHANNELS
from firmware_bridge.simboard.bus import FrameRecord, SimBus
from firmware_bridge.simboard.transports import serve_pty, serve_tcp


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (port 0..65535), got {text!r}")
    return host, int(port)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {value}")
        return value

    return parse


def _baudrate(text: str) -> int:
    if not text.isdigit() or not hasattr(termios, f"B{text}"):
        raise argparse.ArgumentTypeError(f"unsupported baud rate {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk simulate board",
        description="Simulated lock boards (register map v1 or v2) on a pty or TCP port.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="Modbus RTU on a new pseudo-terminal")
    where.add_argument(
        "--tcp", type=_host_port, metavar="HOST:PORT", help="Modbus TCP (port 0: any)"
    )
    parser.add_argument("--units", type=_bounded(1, 247), default=1, help="boards at units 1..N")
    parser.add_argument(
        "--channels", type=_bounded(1, MAX_CHANNELS), default=16, help="channels per board"
    )
    parser.add_argument("--baudrate", type=_baudrate, default=115200, help="RTU line speed (8N1)")
    parser.add_argument("--link", metavar="PATH", help="with --pty: also symlink PATH to the pty")
    parser.add_argument(
        "--auto-close", type=float, default=3.0, metavar="S", help="doors shut S s after opening"
    )
    parser.add_argument(
        "--map-version",
        type=int,
        choices=(1, 2),
        default=None,
        help="register map version (default 1; 2 with --presence)",
    )
    parser.add_argument(
        "--presence",
        action="store_true",
        help="register map v2 with a parcel-presence sensor per channel (discrete inputs 1000+)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every frame (stderr)")
    return parser


def _print_frame(record: FrameRecord) -> None:
    print(
        f"{record.t:.3f} unit={record.unit} fc={record.function_code} "
        f"{record.outcome}: {record.raw.hex(' ')}",
        file=sys.stderr,
        flush=True,
    )


async def _serve(args: argparse.Namespace) -> int:
    bus = SimBus.of(
        args.units,
        args.channels,
        auto_close_s=args.auto_close or None,
        map_version=args.map_version,
        presence=args.presence,
    )
    if args.verbose:
        bus.on_frame = _print_frame
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    boards = (
        f"units 1..{args.units}, {args.channels} channels each, register map v{args.map_version}"
    )
    if args.presence:
        boards += " with presence sensors"
    if args.pty:
        link = await serve_pty(bus, baudrate=args.baudrate, link=args.link)
        print(link.path, flush=True)
        print(f"Modbus RTU {args.baudrate} 8N1, {boards}; Ctrl-C stops", file=sys.stderr)
        await stop.wait()
        await link.stop()
    else:
        server = await serve_tcp(bus, *args.tcp)
        print(server.address, flush=True)
        print(f"Modbus TCP, {boards}; Ctrl-C stops", file=sys.stderr)
        await stop.wait()
        await server.close()
    return 0


def main_simulate(argv: Sequence[str] | None = None) -> int:
    """Run `kiosk simulate board` with `argv` (the words after it); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.link and not args.pty:
        parser.error("--link needs --pty")
    if args.map_version is None:
        args.map_version = 2 if args.presence else 1
    if args.presence and args.map_version != 2:
        parser.error("--presence needs --map-version 2 (presence sensors are register map v2)")
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:  # the TCP port is taken, the link path is not writable
        print(f"kiosk simulate board: {exc}", file=sys.stderr)
        return 1
