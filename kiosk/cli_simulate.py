"""`kiosk simulate board`: the simulated lock board, its options passed to the simulator."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def simulate_board(args: argparse.Namespace) -> int:
    from firmware_bridge.simboard.cli import main_simulate

    argv = ["--pty"] if args.pty else ["--tcp", args.tcp]
    argv += ["--units", args.units, "--channels", args.channels]
    if args.map_version is not None:
        argv += ["--map-version", args.map_version]
    if args.presence:
        argv.append("--presence")
    return main_simulate(argv)


def add_commands(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """`kiosk simulate board` under the main parser."""
    simulate = command("simulate", "simulators")
    simulate_sub = simulate.add_subparsers(dest="simulate_command", metavar="WHAT", required=True)
    board = command(
        "board",
        "the simulated lock board (register map v1, or v2 with --presence / --map-version 2)",
        func=simulate_board,
        owner=simulate_sub,
    )
    where = board.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="Modbus RTU on a new pseudo-terminal")
    where.add_argument("--tcp", metavar="HOST:PORT", help="Modbus TCP on this address")
    board.add_argument("--units", metavar="N", default="1", help="boards at units 1..N")
    board.add_argument("--channels", metavar="N", default="16", help="channels per board")
    board.add_argument(
        "--map-version",
        choices=("1", "2"),
        metavar="1|2",
        help="register map version (default 1; 2 with --presence)",
    )
    board.add_argument(
        "--presence",
        action="store_true",
        help="register map v2 with a parcel-presence sensor per channel (discrete inputs 1000+)",
    )
