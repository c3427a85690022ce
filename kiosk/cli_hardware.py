"""`kiosk hardware scan` and `kiosk hardware map`: commissioning a new bank of lock boards.

scan lists the boards that answer on a bus, reading only. While the daemon
runs it owns the bus, so the scan is asked of it (`hardware.scan`); with the
daemon stopped the bus is opened here, read-only. A kerong-cu bus is scanned
too (its board addresses 0..15, one status request each). map needs the
daemon: it opens each channel in turn through `hardware.map_open` (audited),
asks the technician at the terminal what the door is, and writes a new config
file. A kerong-cu bus is mapped the same way (profile kerong-cu, address 0..15).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.api.client import ApiClient, ApiError, DaemonUnreachable
from kiosk.cli_ops import EXIT_NO_DAEMON, EXIT_OK, EXIT_REFUSED, _table
from kiosk.config.model import MAX_BANK_COLUMNS, MAX_BANK_ROWS, BusConfig, KioskConfig
from kiosk.domain.errors import EXIT_USAGE

#: Bus kinds with boards to scan and channels to map: a kerong-cu bus's are its addresses 0..15.
SCANNABLE = MAPPABLE = ("modbus-rtu", "modbus-tcp", "simulated", "kerong-cu")
KERONG_ADDRESSES = range(16)
LABEL = re.compile(r"[A-Za-z0-9-]{1,16}")
SIZES = ("S", "M", "L")


def units_range(text: str) -> range:
    """`1-16` or `5`: Modbus units, 1..247."""
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST, e.g. 1-16, got {text!r}") from None
    if not 1 <= low <= high <= 247:
        raise argparse.ArgumentTypeError(f"units must be within 1-247, low to high, got {text!r}")
    return range(low, high + 1)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number {low}-{high}, got {text!r}")
        return int(text)

    return parse


def _buses(
    config: KioskConfig, name: str | None, kinds: tuple[str, ...] = SCANNABLE
) -> list[BusConfig]:
    if name is None:
        return [b for b in config.buses if b.kind in kinds]
    bus = next((b for b in config.buses if b.name == name), None)
    if bus is None:
        known = ", ".join(b.name for b in config.buses)
        raise _Usage(f"no bus named {name!r} in {config.source} (buses: {known})")
    if bus.kind not in kinds:
        raise _Usage(f"bus {name!r} is a {bus.kind} bus: it has no units to scan or map")
    return [bus]


class _Usage(Exception):
    """One line for the operator; exit 2."""


# --- scan ---------------------------------------------------------------------------


def scan(args: argparse.Namespace, load: Callable[[], KioskConfig]) -> int:
    from kiosk.doctor.hardware import daemon_running

    config = load()
    try:
        buses = _buses(config, args.bus)
    except _Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    units: range = args.units
    timeout_ms: int = args.timeout_ms
    if daemon_running(config):
        via, found, problems = "daemon", *_scan_daemon(config, buses, units, timeout_ms)
    else:
        via, found, problems = "bus", *_scan_here(config, buses, units, timeout_ms)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps({"via": via, "first": units[0], "last": units[-1], "boards": found}))
    else:
        rows = [
            (
                b["bus"],
                b["unit"],
                b["profile"],
                b["map_version"],
                b["channels"],
                b["presence_sensors"],
                "yes" if b["configured"] else "new",
                b["problem"],
            )
            for b in found
        ]
        head = ["bus", "unit", "profile", "map", "channels", "presence", "config", "note"]
        asked = (
            [f"units {units[0]}-{units[-1]}"] if any(b.kind != "kerong-cu" for b in buses) else []
        )
        if any(b.kind == "kerong-cu" for b in buses):
            asked.append("Kerong board addresses 0-15")
        print(f"{', '.join(asked)} ({'asked the daemon' if via == 'daemon' else via})")
        print(_table(rows, head) if rows else "no board answered")
    return EXIT_REFUSED if problems else EXIT_OK


def _scan_daemon(
    config: KioskConfig, buses: list[BusConfig], units: range, timeout_ms: int
) -> tuple[list[dict[str, Any]], list[str]]:
    found: list[dict[str, Any]] = []
    # Generous: every silent unit costs timeout_ms, and door polls go on in between.
    asked = max(len(units), len(KERONG_ADDRESSES))
    wait_s = 30.0 + asked * (timeout_ms / 1000 + 0.05) * 2
    try:
        with ApiClient(str(config.api.socket), timeout_s=wait_s) as client:
            for bus in buses:
                reply = client.call(
                    "hardware.scan",
                    bus=bus.name,
                    first=units[0],
                    last=units[-1],
                    timeout_ms=timeout_ms,
                )
                found += reply["boards"]
    except ApiError as exc:
        return found, [f"the daemon refused the scan: {exc} [{exc.code}]"]
    except DaemonUnreachable as exc:
        return found, [
            f"the daemon runs (it owns the bus) but cannot be asked: {exc}; "
            "or stop it (`systemctl stop kiosk`) and scan again"
        ]
    return found, []


def _scan_here(
    config: KioskConfig, buses: list[BusConfig], units: range, timeout_ms: int
) -> tuple[list[dict[str, Any]], list[str]]:
    from firmware_bridge.bank import BridgeError

    found: list[dict[str, Any]] = []
    problems: list[str] = []
    for bus in buses:
        if bus.kind == "simulated":
            problems.append(
                f"bus {bus.name!r} is simulated: its boards live inside the daemon; "
                "start it (`kiosk run`) and scan again"
            )
            continue
        mine = [b.unit for b in config.boards if b.bus == bus.name]
        try:
            if bus.kind == "kerong-cu":
                boards = asyncio.run(_scan_kerong(bus, timeout_ms / 1000, mine))
            else:
                boards = asyncio.run(_scan_modbus(bus, units, timeout_ms / 1000, mine))
        except BridgeError as exc:
            problems.append(str(exc))
            continue
        found += boards
    return found, problems


async def _scan_kerong(bus: BusConfig, timeout_s: float, mine: list[int]) -> list[dict[str, Any]]:
    from firmware_bridge.kerong import KerongBusSettings
    from firmware_bridge.kerong.probe import scan_port

    settings = KerongBusSettings(bus.name, bus.device or "", bus.baudrate, bus.timeout_s, 0)
    return [b.to_dict() for b in await scan_port(settings, timeout_s, mine)]


async def _scan_modbus(
    bus: BusConfig, units: range, timeout_s: float, mine: list[int]
) -> list[dict[str, Any]]:
    from firmware_bridge.modbus.probe import scan_bus
    from kiosk.wiring import modbus_settings

    settings = modbus_settings(bus, retries=0)
    return [b.to_dict() for b in await scan_bus(settings, units, timeout_s, mine)]


# --- map ----------------------------------------------------------------------------


class _Walk:
    """What the technician said so far: new lockers, and the labels already taken."""

    def __init__(self, config: KioskConfig) -> None:
        self.taken = {lk.label for lk in config.lockers}
        self.lockers: list[dict[str, Any]] = []

    def ask(self, channel: int) -> str:
        """One channel's answers; "again" to open it once more, "" to leave it, "stop"."""
        while True:
            text = input(f"channel {channel}: label (Enter: no locker, again, stop): ").strip()
            if text.lower() in ("", "again", "stop"):
                return text.lower()
            if not LABEL.fullmatch(text):
                print("  a label is 1 to 16 characters of A-Z a-z 0-9 -")
            elif text in self.taken:
                print(f"  {text} is taken already; give another label")
            else:
                break
        size = ""
        while size not in SIZES:
            size = input("  size (S, M or L): ").strip().upper()
        entry: dict[str, Any] = {"label": text, "size": size, "channel": channel}
        for key, top in (("column", MAX_BANK_COLUMNS), ("row", MAX_BANK_ROWS)):
            value = _whole_or_none(f"  {key} (Enter: none): ", top)
            if value is not None:
                entry[key] = value
        self.taken.add(text)
        self.lockers.append(entry)
        return "done"


def _whole_or_none(prompt: str, top: int) -> int | None:
    while True:
        text = input(prompt).strip()
        if not text:
            return None
        if text.isdigit() and 1 <= int(text) <= top:
            return int(text)
        print(f"  a whole number from 1 to {top}, or Enter for none")


def map_bank(args: argparse.Namespace, load: Callable[[], KioskConfig]) -> int:
    config = load()
    out = Path(args.out)
    if out.exists():
        print(f"error: {out} exists already; give a new file (--out)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        (bus,) = _buses(config, args.bus, MAPPABLE) if args.bus else _one_bus(config)
        profile = _profile(bus, args.unit, args.profile)
    except _Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    known = next((b for b in config.boards if (b.bus, b.unit) == (bus.name, args.unit)), None)
    used = {lk.channel for lk in config.lockers if (lk.bus, lk.unit) == (bus.name, args.unit)}
    # A new board tells its channel count at its first opening; a configured one has its own.
    walk, channels, channel = _Walk(config), known.channels if known else 1, 0
    ir_sensors = False
    print(f"mapping bus {bus.name!r} board {args.unit}: each channel is opened in turn")
    try:
        if profile == "kerong-cu" and known is None:
            ir_sensors = _yes("IR parcel sensor fitted for every lock? (y/N): ")
        while channel < channels:
            if channel in used:
                channel += 1
                continue
            opened = _open(config, bus.name, args.unit, channel, profile)
            channels = opened["channels"]
            print(f"channel {channel} opened; its door sensor reads {opened['door']}")
            answer = walk.ask(channel)
            if answer == "stop":
                break
            if answer != "again":
                channel += 1
    except EOFError:
        print("\nend of input: writing what was mapped so far")
    except DaemonUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_DAEMON
    except ApiError as exc:
        print(f"error: {exc.error.get('message')} [{exc.code}]", file=sys.stderr)
        return EXIT_REFUSED
    if not walk.lockers:
        print("nothing mapped; no file written")
        return EXIT_OK
    try:
        board = (profile, channels, ir_sensors)
        _write(config, out, bus.name, args.unit, board, walk.lockers)
    except (DaemonUnreachable, ApiError) as exc:
        print(f"error: the entries could not be made: {exc}; nothing written", file=sys.stderr)
        return EXIT_NO_DAEMON if isinstance(exc, DaemonUnreachable) else EXIT_REFUSED
    print(
        f"wrote {out}: your config plus {len(walk.lockers)} locker(s) on board {args.unit}. "
        f"Check it (`kiosk config check {out}`), then put it in place and restart the daemon."
    )
    return EXIT_OK


def _one_bus(config: KioskConfig) -> list[BusConfig]:
    buses = [b for b in config.buses if b.kind in MAPPABLE]
    if len(buses) != 1:
        raise _Usage(f"{len(buses)} board buses in the config: say which with --bus NAME")
    return buses


def _profile(bus: BusConfig, unit: int, given: str | None) -> str:
    """The new board's profile: kerong-cu on a kerong-cu bus (address 0..15), else a
    Modbus one (unit 1..247, kiosk-v1 unless given)."""
    if bus.kind == "kerong-cu":
        if given not in (None, "kerong-cu"):
            raise _Usage(f"bus {bus.name!r} is a kerong-cu bus: its boards are kerong-cu")
        if not 0 <= unit <= 15:
            raise _Usage(f"a Kerong board's --unit is its address 0-15, got {unit}")
        return "kerong-cu"
    if given == "kerong-cu":
        raise _Usage(f"bus {bus.name!r} is a {bus.kind} bus: a kerong-cu board needs one")
    if unit < 1:
        raise _Usage(f"a Modbus board's --unit is 1-247, got {unit}")
    return given or "kiosk-v1"


def _yes(prompt: str) -> bool:
    return input(prompt).strip().lower() in ("y", "yes")


def _open(config: KioskConfig, bus: str, unit: int, channel: int, profile: str) -> dict[str, Any]:
    # A new connection per opening: the technician may take longer than the API's idle limit.
    with ApiClient(str(config.api.socket), timeout_s=60.0) as client:
        return client.call(
            "hardware.map_open", bus=bus, unit=unit, channel=channel, profile=profile
        )


def _write(
    config: KioskConfig,
    out: Path,
    bus: str,
    unit: int,
    board: tuple[str, int, bool],
    lockers: list[dict[str, Any]],
) -> None:
    """The live config's text as it is, then the new entries; never over an existing file.

    The entries are the daemon's (`hardware.map_entries`): one renderer and one
    set of checks for the terminal and the maintenance screen.
    """
    profile, channels, ir_sensors = board
    with ApiClient(str(config.api.socket), timeout_s=60.0) as client:
        entries = client.call(
            "hardware.map_entries",
            bus=bus,
            unit=unit,
            profile=profile,
            channels=channels,
            lockers=lockers,
            ir_sensors=ir_sensors,
        )["toml"]
    text = Path(config.source).read_text(encoding="utf-8").rstrip("\n") + "\n"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with out.open("x", encoding="utf-8") as handle:  # "x": fails if it appeared meanwhile
        handle.write(f"{text}\n# {stamp}\n{entries}")


def add_commands(
    sub: Any, command: Callable[..., argparse.ArgumentParser], json_opt: Any, load: Any
) -> None:
    """`kiosk hardware scan|map` under the main parser; `load(args)` loads the config."""
    hardware = command("hardware", "commissioning: find boards on a bus, map a new bank")
    hw_sub = hardware.add_subparsers(dest="hardware_command", metavar="ACTION", required=True)
    scanner = command(
        "scan",
        "list the boards that answer on a bus (reads only)",
        [json_opt],
        lambda args: scan(args, lambda: load(args)),
        hw_sub,
    )
    scanner.add_argument(
        "--bus", metavar="NAME", help="only this bus (default: every Modbus and kerong-cu bus)"
    )
    scanner.add_argument(
        "--units",
        type=units_range,
        default=range(1, 248),
        metavar="FIRST-LAST",
        help="Modbus units to ask (default 1-247; a kerong-cu bus: addresses 0-15, always)",
    )
    scanner.add_argument(
        "--timeout-ms",
        type=_bounded(5, 5000),
        default=40,
        metavar="MS",
        help="wait for each unit's answer (default 40; 5-5000)",
    )
    mapper = command(
        "map",
        "open each channel of a new board in turn and write its [[locker]] entries",
        func=lambda args: map_bank(args, lambda: load(args)),
        owner=hw_sub,
    )
    mapper.add_argument(
        "--unit",
        type=_bounded(0, 247),
        required=True,
        metavar="UNIT",
        help="Modbus unit 1-247, or a Kerong board's address 0-15",
    )
    mapper.add_argument("--out", metavar="FILE", required=True, help="the new config file")
    mapper.add_argument("--bus", metavar="NAME", help="default: the one board bus")
    mapper.add_argument(
        "--profile",
        choices=["kiosk-v1", "waveshare-relay-d", "kerong-cu"],
        metavar="PROFILE",
        help="the new board's kind: kiosk-v1 (default) or waveshare-relay-d on a Modbus bus; "
        "kerong-cu (always) on a kerong-cu bus",
    )
