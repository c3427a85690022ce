"""Boards and door sensors: asked of the running daemon (it owns the bus), else probed read-only."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from firmware_bridge.bank import BridgeError, DoorState
from kiosk.api.client import ApiClient, ApiError, DaemonUnreachable
from kiosk.config.model import BoardConfig, BusConfig, KioskConfig
from kiosk.doctor.result import Check, fail, ok, skip


def daemon_running(config: KioskConfig) -> bool:
    """True while a daemon holds the ledger's lock (it then owns the bus too)."""
    path = Path(f"{config.ledger.path}.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops our shared lock, if we got it
    return False


def boards_and_doors(config: KioskConfig) -> list[Check]:
    if daemon_running(config):
        return _from_daemon(config)
    return asyncio.run(_probe(config))


# --- the daemon runs: ask it over the local API -------------------------------


def _from_daemon(config: KioskConfig) -> list[Check]:
    try:
        with ApiClient(str(config.api.socket), timeout_s=30.0) as client:
            health = client.call("health")
            doors = client.call("doors")
            presence = client.call("presence.check")
    except ApiError as exc:
        reason = f"the daemon runs but refused ({exc.code}): {exc}"
        return [skip("boards", reason), skip("doors", reason), skip("presence", reason)]
    except DaemonUnreachable as exc:
        reason = f"the daemon runs (it owns the bus) but cannot be asked: {exc}"
        return [skip("boards", reason), skip("doors", reason), skip("presence", reason)]
    seen = {(b["bus"], b["unit"]): b for b in health.get("boards", [])}
    checks = [
        _board_from_daemon(board, seen.get((board.bus, board.unit))) for board in config.boards
    ]
    states = {d["label"]: d["door"] for d in doors.get("doors", [])}
    checks.append(_doors_check(config, states, "asked the daemon"))
    checks.append(_presence_check(presence.get("lockers", [])))
    return checks


def _presence_check(lockers: list[dict[str, Any]]) -> Check:
    """The daemon's sweep of the parcel-presence sensors, judged against what each locker holds."""
    fitted = [lk for lk in lockers if any(r != "none" for r in lk.get("readings", []))]
    if not fitted:
        return skip("presence", "no parcel-presence sensors fitted")
    wrong = [f"{lk['label']}: {lk['problem']}" for lk in fitted if not lk.get("ok")]
    if wrong:
        return fail(
            "presence",
            "; ".join(wrong),
            "look in each locker named: take out what was left (then `kiosk check LABEL empty"
            " --reason ...`), or clean, align or replace its sensor (docs/hardware.md)",
        )
    return ok("presence", f"{len(fitted)} sensors agree with the ledger (asked the daemon)")


def _board_from_daemon(board: BoardConfig, info: dict[str, Any] | None) -> Check:
    name = f"board {board.bus}/{board.unit}"
    if info is None:
        return fail(
            name, "the daemon does not drive this board", "restart the daemon on this config"
        )
    if not info.get("online"):
        return fail(name, "not answering (asked the daemon)", _silent_fix(board))
    if info.get("channels") != board.channels:
        return fail(
            name,
            f"{info.get('channels')} channels in the daemon, {board.channels} in the config",
            "restart the daemon on this config (`systemctl restart kiosk`)",
        )
    return ok(name, f"answering, {board.channels} channels (asked the daemon)")


# --- no daemon: probe the bus directly, read-only -----------------------------


async def _probe(config: KioskConfig) -> list[Check]:
    checks: list[Check] = []
    states: dict[str, str] = {}
    where = {(lk.bus, lk.unit, lk.channel): lk.label for lk in config.lockers}
    for bus in config.buses:
        boards = [b for b in config.boards if b.bus == bus.name]
        if bus.kind not in ("modbus-rtu", "modbus-tcp"):
            why = {
                "simulated": "the simulated board lives inside the daemon",
                "kerong-cu": "a kerong-cu line is read only by the daemon",
            }.get(bus.kind, "GPIO pins are read only by the daemon")
            checks += [skip(f"board {b.bus}/{b.unit}", f"{why}; start it to check") for b in boards]
            continue
        for result in await _probe_bus(bus, boards):
            checks.append(result[0])
            for channel, state in result[1].items():
                label = where.get((bus.name, result[2], channel))
                if label is not None:
                    states[label] = state.value
    probed = {lk.label for lk in config.lockers if _bus_kind(config, lk.bus) in _MODBUS}
    if not probed:
        checks.append(skip("doors", "no Modbus bus to read without the daemon"))
    else:
        checks.append(_doors_check(config, states, "read the bus", probed))
    why = "judged against the ledger by the running daemon's sweep; start it to check"
    checks.append(skip("presence", why))
    return checks


_MODBUS = ("modbus-rtu", "modbus-tcp")


def _bus_kind(config: KioskConfig, name: str) -> str:
    return next((b.kind for b in config.buses if b.name == name), "")


async def _probe_bus(
    bus: BusConfig, boards: list[BoardConfig]
) -> list[tuple[Check, dict[int, DoorState], int]]:
    from firmware_bridge.modbus import BoardSpec
    from firmware_bridge.modbus.probe import probe_bus
    from kiosk.wiring import modbus_settings

    settings = modbus_settings(bus)
    specs = [
        BoardSpec(b.bus, b.unit, b.profile, b.channels, sensor_open_high=b.sensor_open_high)
        for b in boards
    ]
    try:
        probes = await probe_bus(settings, specs)
    except BridgeError as exc:
        return [
            (fail(f"board {b.bus}/{b.unit}", str(exc.args[0]), exc.fix), {}, b.unit) for b in boards
        ]
    out = []
    by_unit = {b.unit: b for b in boards}
    for probe in probes:
        board = by_unit[probe.unit]
        name = f"board {probe.bus}/{probe.unit}"
        if probe.problem:
            fix = probe.fix or _silent_fix(board)
            out.append((fail(name, probe.problem, fix), {}, probe.unit))
            continue
        count = f"reports {probe.channels} channels" if probe.channels else "answers"
        out.append(
            (ok(name, f"{count}, config {board.channels} (read the bus)"), probe.doors, probe.unit)
        )
    return out


def _silent_fix(board: BoardConfig) -> str:
    return (
        f"check the board's power, the A/B wiring and termination, and that its address "
        f"(unit) is {board.unit} and its baud rate the bus's"
    )


def _doors_check(
    config: KioskConfig, states: dict[str, str], how: str, labels: Iterable[str] | None = None
) -> Check:
    wanted = sorted(labels if labels is not None else (lk.label for lk in config.lockers))
    unknown = [label for label in wanted if states.get(label, "unknown") == "unknown"]
    if unknown:
        return fail(
            "doors",
            f"{len(unknown)} of {len(wanted)} door sensors unreadable: "
            f"{', '.join(unknown)} ({how})",
            "check those boards (above) and each sensor's wiring; `kiosk selftest` re-reads them",
        )
    opened = [label for label in wanted if states.get(label) == "open"]
    detail = f"{len(wanted)} door sensors readable, {len(opened)} open ({how})"
    return ok("doors", detail + (f": {', '.join(opened)}" if opened else ""))
