"""The daemon as a whole: a code over the local API to its unlock frame; time to READY and RSS.

**Code -> unlock frame.** A real `Daemon` in this process on a `simulated`
bus (the built-in board on a real pty, through the real Modbus backend, wire
timing on), 16 lockers on one board, the shipped poll interval (100 ms: door
supervision reads the board all along, and an unlock may have to wait for a
read in flight), ledger on disk. A public (keypad) connection sends
`code.submit` on the Unix socket; the time runs from just before the request
is written until the simulated board applies the FC05 write of that locker's
channel (`SimBus.on_frame`). The reply (door seen open) is timed too. Then the
bench shuts the door on the board and waits for the daemon's `door.outcome`
before the next code: one courier or customer at a time. Parcels are
announced up front; they are delivered 16 at a time, then picked up.

**READY and RSS.** `python -m kiosk --config F run` in a child process with
a NOTIFY_SOCKET, 200 lockers on 13 simulated boards of 16 channels (the gpio
kind stops at 28 pins). Wall time from spawn to the READY=1 datagram, with a
new ledger (created and migrated at start) and with an existing one; VmRSS
and VmHWM from /proc/PID/status after READY, and again after traffic over the
API (parcels announced, delivered and picked up by four couriers at once,
`status`, `doors` and `parcels` read); then SIGTERM, and the time to exit.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import MS, summarise
from firmware_bridge.simboard import FrameRecord, SimBus
from kiosk.api.aclient import AsyncApiClient
from kiosk.config.loader import load_config
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier

CHANNELS = 16
API_LOCKERS = 16
BIG_LOCKERS, BIG_BOARDS = 200, 13
SIZES = ("S", "M", "L")
OUTCOME_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 30.0
#: How long the simulated person holds a door open in the 200-locker runs (s). Shorter
#: than a full scan plus a poll, and the daemon may never see the door open.
DOOR_OPEN_S = 1.0
ROOT = Path(__file__).resolve().parents[1]


def write_site(state: Path, sock: Path, lockers: int, door_close_s: float) -> Path:
    """A state directory with kiosk.toml (one simulated bus), a site key; returns the config."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "site-code.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    rng = random.Random(7)
    boards = -(-lockers // CHANNELS)
    lines = [
        '[site]\nid = "bench-01"\n[ledger]\npath = "ledger.db"',
        '[keys]\nsite_code_key_file = "site-code.key"',
        f'[api]\nsocket = "{sock}"',
        f'[[bus]]\nname = "sim"\nkind = "simulated"\ndoor_close_s = {door_close_s}',
    ]
    lines += [
        f'[[board]]\nbus = "sim"\nunit = {u}\nchannels = {CHANNELS}' for u in range(1, 1 + boards)
    ]
    for i in range(lockers):
        size = "S" if lockers <= CHANNELS else rng.choices(SIZES, (5, 3, 2))[0]
        lines.append(
            f'[[locker]]\nlabel = "{chr(65 + i // 26)}-{i % 26 + 1}"\nsize = "{size}"\n'
            f'bus = "sim"\nunit = {1 + i // CHANNELS}\nchannel = {i % CHANNELS}'
        )
    config = state / "kiosk.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


# --- code over the API -> unlock frame ---------------------------------------------------


class _Doors:
    """The board's side: when each channel's unlock was applied; shutting doors."""

    def __init__(self, sim: SimBus) -> None:
        self.sim = sim
        self.unlocked: dict[tuple[int, int], int] = {}
        sim.on_frame = self._frame

    def _frame(self, record: FrameRecord) -> None:
        raw = record.raw
        if record.function_code == 5 and record.outcome == "reply" and raw[4:6] == b"\xff\x00":
            self.unlocked[(raw[0], int.from_bytes(raw[2:4], "big"))] = time.perf_counter_ns()


async def _api_flows(config_path: Path, flows: int) -> dict[str, Any]:
    config = load_config(config_path)
    where = {lk.label: (lk.unit, lk.channel) for lk in config.lockers}
    daemon = Daemon(config, notifier=Notifier(""))
    await daemon.start()
    outcomes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tech = AsyncApiClient(str(config.api.socket))
    keypad = AsyncApiClient(
        str(config.api.socket),
        on_event=lambda e, d: outcomes.put_nowait(d) if e == "door.outcome" else None,
    )
    to_frame: list[int] = []
    to_reply: list[int] = []
    try:
        doors = _Doors(daemon.bank.banks["sim"].sim)  # type: ignore[union-attr]
        await tech.connect()
        await keypad.connect(public=True, subscribe=True)
        parcels = [await tech.call("parcels.announce", size="S") for _ in range(flows // 2 + 1)]
        codes: list[tuple[str, str]] = []
        for first in range(0, len(parcels), API_LOCKERS):
            batch = parcels[first : first + API_LOCKERS]
            codes += [(p["delivery_code"], "delivered") for p in batch]
            codes += [(p["pickup_code"], "picked_up") for p in batch]
        for code, want in codes[:flows]:
            start = time.perf_counter_ns()
            opened = await keypad.call("code.submit", code=code)
            replied = time.perf_counter_ns()
            unit, channel = where[opened["locker"]]
            applied = doors.unlocked.get((unit, channel), 0)
            if not start < applied < replied:
                raise RuntimeError(f"no unlock frame for {opened['locker']} during its code")
            to_frame.append(applied - start)
            to_reply.append(replied - start)
            doors.sim[unit].close(channel)
            outcome = await asyncio.wait_for(outcomes.get(), OUTCOME_TIMEOUT_S)
            if outcome["result"] != want:
                raise RuntimeError(f"{opened['locker']}: expected {want}, got {outcome}")
        health = (await tech.call("health"))["boards"][0]["counters"]
    finally:
        await tech.close()
        await keypad.close()
        await asyncio.sleep(0.01)  # the server sees both connections end
        await daemon.stop()
    return {
        "latency_ms": {
            "code_to_frame": summarise(to_frame, MS),
            "code_to_reply": summarise(to_reply, MS),
        },
        "bus_counters": health,
    }


# --- `kiosk run` in a child: READY and RSS -------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


class _Child:
    """One `python -m kiosk --config F run`, started and timed to READY=1."""

    def __init__(self, config: Path, notify: Path, log: Path) -> None:
        self.config, self.notify, self.log = config, notify, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Spawn and wait for READY=1; seconds from spawn."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            if self.notify.exists():
                self.notify.unlink()
            sock.bind(str(self.notify))
            sock.settimeout(READY_TIMEOUT_S)
            env = {**os.environ, "NOTIFY_SOCKET": str(self.notify)}
            env.pop("WATCHDOG_USEC", None)
            start = time.perf_counter()
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "kiosk", "--config", str(self.config), "run"],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            while True:
                message = sock.recv(4096).decode()
                if "READY=1" in message.split("\n"):
                    return time.perf_counter() - start

    def stop(self) -> tuple[float, int]:
        """SIGTERM; seconds to exit and the exit code."""
        assert self.proc is not None
        start = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        return time.perf_counter() - start, code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def _traffic(sock: str, deliveries: int, couriers: int = 4) -> dict[str, Any]:
    """Parcels announced, delivered and half picked up by `couriers` at once; reads.

    Returns the opened doors by role, and code -> door seen open (ms) of every code.
    """
    tech = AsyncApiClient(sock)
    await tech.connect()
    parcels = [await tech.call("parcels.announce", size=SIZES[i % 3]) for i in range(deliveries)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    opened: dict[str, int] = {"courier": 0, "customer": 0}
    took: list[int] = []

    async def courier() -> None:
        client = AsyncApiClient(sock)
        await client.connect(public=True)
        while not queue.empty():
            code = queue.get_nowait()
            start = time.perf_counter_ns()
            result = await client.call("code.submit", code=code)
            took.append(time.perf_counter_ns() - start)
            opened[result["role"]] += 1
        await client.close()

    for p in parcels:
        queue.put_nowait(p["delivery_code"])
    await asyncio.gather(*(courier() for _ in range(couriers)))
    listing: list[dict[str, Any]] = []
    for _ in range(200):  # the simulated person shuts each door after door_close_s
        listing = (await tech.call("parcels"))["parcels"]
        if all(p["status"] == "DELIVERED" for p in listing):
            break
        await asyncio.sleep(0.1)
    pickup = {p["parcel_id"]: p["pickup_code"] for p in parcels}
    for p in listing[: deliveries // 2]:
        queue.put_nowait(pickup[p["parcel_id"]])
    await asyncio.gather(*(courier() for _ in range(couriers)))
    for call in ("status", "doors", "parcels", "health"):
        await tech.call(call)
    await tech.close()
    return {"opened": opened, "couriers": couriers, "code_to_open_ms": summarise(took, MS)}


def _ready_runs(workdir: Path, sockets: Path, restarts: int, deliveries: int) -> dict[str, Any]:
    state = workdir / "daemon-200"
    config = write_site(state, sockets / "k200.sock", BIG_LOCKERS, door_close_s=DOOR_OPEN_S)
    notify, log = sockets / "notify.sock", state / "daemon.log"
    runs: list[dict[str, Any]] = []
    for i in range(1 + restarts):
        child = _Child(config, notify, log)
        try:
            ready_s = child.start()
            assert child.proc is not None
            run: dict[str, Any] = {
                "ledger": "new" if i == 0 else "existing",
                "ready_s": round(ready_s, 3),
                "after_ready_kib": _status(child.proc.pid),
            }
            if i == 1:  # the first restart carries the traffic
                started = time.perf_counter()
                run["traffic"] = asyncio.run(_traffic(str(sockets / "k200.sock"), deliveries))
                run["traffic_s"] = round(time.perf_counter() - started, 2)
                run["after_traffic_kib"] = _status(child.proc.pid)
            stop_s, code = child.stop()
            run.update(stop_s=round(stop_s, 3), exit_code=code)
            runs.append(run)
        finally:
            child.kill()
    warm = sorted(r["ready_s"] for r in runs[1:])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import kiosk.daemon.app, kiosk.cli"], check=True)
    imports_s = time.perf_counter() - started
    return {
        "lockers": BIG_LOCKERS,
        "boards": BIG_BOARDS,
        "runs": runs,
        "ready_s": {
            "new_ledger": runs[0]["ready_s"],
            "existing_median": warm[len(warm) // 2],
            "existing_max": warm[-1],
        },
        "python_imports_s": round(imports_s, 3),
        "ledger_kib": (state / "ledger.db").stat().st_size // 1024,
    }


def run(workdir: Path, flows: int = 200, restarts: int = 4, deliveries: int = 60) -> dict:
    """`flows` codes over the API; `restarts` warm starts of `kiosk run`, one with traffic."""
    sockets = Path(tempfile.mkdtemp(prefix="kb-"))  # short: a socket path is <= 107 bytes
    try:
        config = write_site(workdir / "daemon-api", sockets / "k16.sock", API_LOCKERS, 0)
        result: dict[str, Any] = {
            "api": {
                "lockers": API_LOCKERS,
                "flows": flows,
                **asyncio.run(_api_flows(config, flows)),
            }
        }
        result["process"] = _ready_runs(workdir, sockets, max(1, restarts), deliveries)
        return result
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def table(result: dict[str, Any]) -> list[str]:
    """Markdown: code over the API -> unlock frame; READY and RSS of `kiosk run`."""

    def f(ms: float) -> str:
        return f"{ms:,.1f}" if ms >= 10 else f"{ms:.2f}"

    api, proc = result["api"], result["process"]
    lines = [
        f"Daemon: code.submit on the socket -> FC05 at the simulated board, {api['lockers']} "
        f"lockers, shipped poll interval; bus counters {api['bus_counters']}",
        "",
        "| measure | n | p50 ms | p99 ms | max ms | target |",
        "|---|---|---|---|---|---|",
    ]
    for title, key, target in (
        ("code -> unlock frame at the board", "code_to_frame", "p99 under 20 ms"),
        ("code -> reply (door seen open)", "code_to_reply", ""),
    ):
        s = api["latency_ms"][key]
        lines.append(
            f"| {title} | {s['n']} | {f(s['p50'])} | {f(s['p99'])} | {f(s['max'])} | {target} |"
        )
    lines += [
        "",
        f"`kiosk run` with {proc['lockers']} lockers on {proc['boards']} simulated boards "
        f"(Python imports alone: {proc['python_imports_s']} s; ledger {proc['ledger_kib']} KiB)",
        "",
        "| run | ledger | READY s | VmRSS MiB after READY | after traffic | VmHWM MiB | stop s |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(proc["runs"]):
        ready = run["after_ready_kib"]
        after = run.get("after_traffic_kib")
        cells = [
            str(i + 1),
            run["ledger"],
            str(run["ready_s"]),
            f"{ready['VmRSS'] / 1024:.1f}",
            f"{after['VmRSS'] / 1024:.1f}" if after else "",
            f"{(after or ready)['VmHWM'] / 1024:.1f}",
            str(run["stop_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for run in proc["runs"]:
        if "traffic" in run:
            t = run["traffic"]
            s = t["code_to_open_ms"]
            lines.append(
                f"\nTraffic ({run['traffic_s']} s): {t['opened']} doors opened by "
                f"{t['couriers']} couriers at once; code -> door seen open p50 {f(s['p50'])} ms, "
                f"max {f(s['max'])} ms. Targets: READY under 1 s, RSS under 64 MiB."
            )
    return lines
