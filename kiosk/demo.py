"""`kiosk demo`: daemon + simulated lock board + keypad screen, with sample parcels, no network.

Interactive (the default): the embedded config is written into a state
directory, `kiosk run` starts on it as a child process (its log goes to
DIR/daemon.log), three sample parcels are announced through the local API,
their codes are printed and written to DIR/demo-codes.txt, and the keypad
screen opens; the daemon stops when the screen closes. `--headless` runs the
same daemon in-process and walks one delivery and one pickup through the API.
Both set a technician PIN for the demo bank and print it, so the maintenance
screen can be tried at once. `--web` serves the keypad screen to a browser
(textual-serve) instead of this terminal, and prints its URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket as sockets
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiClient, DaemonUnreachable
from kiosk.config.loader import parse_config
from kiosk.config.model import KioskConfig
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier
from kiosk.domain.codes import new_code_key_text
from kiosk.domain.pins import PIN_MIN
from kiosk.wiring import build_lock_bank

SAMPLE_SIZES = ("S", "M", "L")
#: Runs the keypad screen on a daemon's socket, showing (parcel, delivery, pickup) codes
#: and the technician PIN.
KeypadScreen = Callable[[str, list[tuple[str, str, str]], str], None]
#: Serves the keypad screen of a config file to browsers on localhost:PORT until Ctrl+C.
WebScreen = Callable[[str, int], int]
#: The demo bank's technician, whose PIN `kiosk demo` sets and prints.
DEMO_TECHNICIAN = "demo-tech"
#: `kiosk demo --web` listens here on localhost, or on a free port if this one is taken.
WEB_PORT = 8000
CONFIG_NAME = "kiosk.toml"
#: How long the daemon child may take to answer its first `hello`.
START_S = 20.0


def _embedded() -> str:
    return resources.files("kiosk").joinpath("demo.toml").read_text(encoding="utf-8")


def demo_config(state_dir: Path) -> KioskConfig:
    """The embedded default config, with its relative paths inside `state_dir` (key made once)."""
    config = parse_config(tomllib.loads(_embedded()), state_dir / CONFIG_NAME)
    key_file = Path(config.keys.site_code_key_file)
    if not key_file.exists():
        key_file.write_text(new_code_key_text(), encoding="ascii")
        key_file.chmod(0o600)
    return config


def write_config(state_dir: Path) -> tuple[Path, KioskConfig]:
    """DIR/kiosk.toml for `kiosk run --config` and `kiosk ui --config` (paths as in-process)."""
    config = demo_config(state_dir)
    path = state_dir / CONFIG_NAME
    path.write_text(_embedded(), encoding="utf-8")
    return path, config


def record_samples(state_dir: Path, parcels: list[dict[str, Any]], out: TextIO) -> None:
    """demo-codes.txt first (one `ID delivery=CODE pickup=CODE` a line), then the printout."""
    lines = [
        f"{p['parcel_id']} delivery={p['delivery_code']} pickup={p['pickup_code']}" for p in parcels
    ]
    (state_dir / "demo-codes.txt").write_text("\n".join(lines) + "\n", encoding="ascii")
    print("Sample parcels (also in demo-codes.txt):", file=out)
    for p in parcels:
        print(
            f"  {p['parcel_id']}  size {p['size']}  delivery code {p['delivery_code']}"
            f"  pickup code {p['pickup_code']}",
            file=out,
        )


def new_pin() -> str:
    """A fresh random PIN of the shortest length allowed (a demo's: printed, not secret)."""
    return "".join(secrets.choice("0123456789") for _ in range(PIN_MIN))


def record_pin(pin: str, out: TextIO) -> None:
    print(
        f"Technician PIN: {pin} (technician {DEMO_TECHNICIAN}; F2 or * on the keypad screen)",
        file=out,
    )


def web_port(host: str = "localhost", wanted: int = WEB_PORT) -> int:
    """`wanted` if nothing listens there, else a port the system picks."""
    for port in (wanted, 0):
        with sockets.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no free port on {host}")


# --- headless: the daemon in-process, driven through its API ------------------------


class _Walk:
    """The headless walk's view of the bank: API calls, door.outcome events, the simulated board."""

    def __init__(self, config: KioskConfig, daemon: Daemon, bank: Any) -> None:
        self.config, self.daemon = config, daemon
        bus = config.buses[0].name
        self.board = {lk.label: (bank.banks[bus].sim[lk.unit], lk.channel) for lk in config.lockers}
        self.outcomes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.api = AsyncApiClient(
            str(config.api.socket),
            on_event=lambda e, d: self.outcomes.put_nowait(d) if e == "door.outcome" else None,
        )

    def door(self, label: str) -> str:
        sim, channel = self.board[label]
        return "open" if sim.is_open(channel) else "shut"

    async def shut(self, label: str) -> str:
        """The person shuts the door; the result of the door.outcome the daemon then publishes."""
        sim, channel = self.board[label]
        sim.close(channel)
        outcome = await asyncio.wait_for(self.outcomes.get(), 20)
        return str(outcome["result"])

    async def line(self, label: str, parcel_id: str | None = None) -> str:
        status = await self.api.call("status")
        locker = next(lk for lk in status["lockers"] if lk["label"] == label)
        wanted = parcel_id or locker["parcel_id"]
        text = f"locker {label}: {locker['status']}"
        if wanted:
            parcels = (await self.api.call("parcels"))["parcels"]
            parcel = next((p for p in parcels if p["parcel_id"] == wanted), None)
            if parcel:
                text += f", parcel {wanted}: {parcel['status']}"
        return text


async def headless(state_dir: Path, out: TextIO) -> int:
    """Walk a delivery and a pickup through the daemon's API, printing each step; 0 if all held."""
    config = demo_config(state_dir)
    # Nobody stands at a headless bank: the walk shuts the doors itself.
    buses = tuple(dataclasses.replace(b, door_close_s=0.0) for b in config.buses)
    config = dataclasses.replace(config, buses=buses)
    bank = build_lock_bank(config)
    daemon = Daemon(config, bank=bank, notifier=Notifier(""))
    await daemon.start()
    walk = _Walk(config, daemon, bank)
    try:
        await walk.api.connect(subscribe=True)
        print(f"locker-kiosk demo: bank {config.site.id}, state in {state_dir}", file=out)
        parcels = [await walk.api.call("parcels.announce", size=s) for s in SAMPLE_SIZES]
        record_samples(state_dir, parcels, out)
        pin = new_pin()
        await walk.api.call("tech.set_pin", technician_id=DEMO_TECHNICIAN, pin=pin)
        record_pin(pin, out)
        first = parcels[0]
        print(f"\n1. A courier types delivery code {first['delivery_code']}", file=out)
        opened = await walk.api.call("code.submit", code=first["delivery_code"])
        label = opened["locker"]
        print(
            f"   locker {label} unlocked, door {walk.door(label)}; {await walk.line(label)}",
            file=out,
        )
        print("2. The courier puts the parcel in and shuts the door", file=out)
        await walk.shut(label)
        print(f"   {await walk.line(label)}", file=out)
        print(f"3. The customer types pickup code {first['pickup_code']}", file=out)
        again = await walk.api.call("code.submit", code=first["pickup_code"])
        print(f"   locker {again['locker']} unlocked, door {walk.door(again['locker'])}", file=out)
        print("4. The customer takes the parcel and shuts the door", file=out)
        await walk.shut(again["locker"])
        print(f"   {await walk.line(again['locker'], first['parcel_id'])}", file=out)
        verdict = await walk.api.call("audit.verify")
        depth = (await walk.api.call("status"))["outbox_depth"]
        print(
            f"\nAudit log: {verdict['rows']} rows, "
            f"chain {'verified' if verdict['ok'] else 'BROKEN'}."
            f" Outbox: {depth} events waiting for the cloud.",
            file=out,
        )
        return 0 if verdict["ok"] and again["locker"] == label else 1
    finally:
        await walk.api.close()
        # Let the server read our EOF and end that connection itself: on Python 3.11 a
        # connection task cancelled by the server's close() logs a spurious traceback.
        await asyncio.sleep(0.1)
        await daemon.stop()


# --- interactive: `kiosk run` as a child, the keypad screen in this terminal ----------


def _wait_for_daemon(socket: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while True:
        try:
            with ApiClient(socket, timeout_s=5) as client:
                client.call("hello")
                return
        except DaemonUnreachable:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(
                    f"the demo daemon did not start; its log ends:\n{tail}"
                ) from None
            time.sleep(0.1)


def interactive(
    state_dir: Path, out: TextIO, screen: KeypadScreen | None, web: WebScreen | None = None
) -> int:
    """Daemon child + samples + PIN + the keypad screen (`screen`; None: no terminal to show
    it in), or with `web` the screen served to a browser until Ctrl+C."""
    config_path, config = write_config(state_dir)
    socket = str(config.api.socket)
    log = state_dir / "daemon.log"
    with log.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--config", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
        )
    try:
        _wait_for_daemon(socket, proc, log)
        print(f"locker-kiosk demo: bank {config.site.id}, state in {state_dir}", file=out)
        pin = new_pin()
        with ApiClient(socket) as client:
            parcels = [client.call("parcels.announce", size=s) for s in SAMPLE_SIZES]
            client.call("tech.set_pin", technician_id=DEMO_TECHNICIAN, pin=pin)
        record_samples(state_dir, parcels, out)
        record_pin(pin, out)
        if web is not None:
            port = web_port()
            print(f"\nThe keypad screen: http://localhost:{port}/ (Ctrl+C stops)", file=out)
            out.flush()
            return web(str(config_path), port)
        if screen is None:
            print(
                f"\nNo terminal to show the keypad screen in; the demo stops here. Run it in a"
                f" terminal, or keep this bank running and open the screen yourself:\n"
                f"  kiosk run --config {config_path} &\n"
                f"  kiosk ui --config {config_path}     (or: kiosk ui --web --config ...)",
                file=out,
            )
            return 0
        print("\nOpening the keypad screen (Ctrl+Q quits)...", file=out, flush=True)
        codes = [(p["parcel_id"], p["delivery_code"], p["pickup_code"]) for p in parcels]
        screen(socket, codes, pin)
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(
    state_dir: str | None,
    headless_mode: bool,
    screen: KeypadScreen | None = None,
    web: WebScreen | None = None,
) -> int:
    """`kiosk demo`; `screen(socket, codes, pin)` runs the keypad (the CLI passes kiosk.ui's)."""
    directory = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    directory = directory.absolute()
    directory.mkdir(parents=True, exist_ok=True)
    if headless_mode:
        return asyncio.run(headless(directory, sys.stdout))
    if web is not None:  # `--web`: the CLI passes kiosk.ui's server
        return interactive(directory, sys.stdout, None, web=web)
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    return interactive(directory, sys.stdout, screen if terminal else None)
