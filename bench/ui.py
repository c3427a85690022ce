"""The keypad screen's latency through the real daemon, and the memory a `kiosk ui` process takes.

In one event loop, as in the UI tests: the real Daemon (GPIO bank on
gpiozero's MockFactory, the product's door simulator, a real SQLite ledger,
the real Unix-socket API) and the real KioskApp under Textual's headless
driver (`App.run_test`, 80x24). Timed per flow:

* keypress -> digit echoed: a Key event posted to the app until the masked
  display holds one more dot and the screen has been refreshed after it
  (Textual paints at most 60 times a second);
* Enter -> "locker open": the Enter Key until the result screen shows the
  locker and has been refreshed; this takes the code.submit round trip
  through the socket, the limiter and reservation commits, the unlock pulse
  and the door sensor reading open.

Keys come 50 ms apart (untimed), as from a quick person; a scanner's burst
is a correctness test (tests/kiosk/ui), not timed here.

Then one `python -m kiosk ui` process on a pseudo-terminal, connected to the
same daemon, for its resident memory (VmRSS and peak VmHWM from /proc).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory
from textual import events

from bench.stats import MS, summarise
from firmware_bridge.gpio import GpioChannel, GpioLockBank
from firmware_bridge.gpio_sim import GpioDoorSim
from kiosk.api.aclient import AsyncApiClient
from kiosk.config.loader import load_config
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier
from kiosk.domain.codes import new_code_key_text
from kiosk.ui.app import KioskApp
from kiosk.ui.screens.door import OpenScreen
from kiosk.ui.screens.entry import CodeScreen
from kiosk.ui.widgets import CodeDisplay

LOCKERS = [("A-1", "S"), ("A-2", "S"), ("A-3", "S"), ("A-4", "S")]
PULSE_MS = 60
#: Untimed pause after each key: a person (or a scanner's next code) is not instant.
GAP_S = 0.05

_CONFIG = """
[site]
id = "bench-ui"
name = "Bench"
[ledger]
path = "ledger.db"
[keys]
site_code_key_file = "site-code.key"
[api]
socket = "kiosk.sock"
[[bus]]
name = "gpio"
kind = "gpio"
pin_factory = "mock"
debounce_ms = 0
poll_ms = 20
relay_pins = {relays}
sensor_pins = {sensors}
[[board]]
bus = "gpio"
unit = 1
profile = "gpio"
channels = {count}
pulse_ms = {pulse}
max_pulse_ms = 500
{lockers}
"""


def write_config(workdir: Path) -> Path:
    (workdir / "site-code.key").write_text(new_code_key_text(), encoding="ascii")
    lockers = "".join(
        f'[[locker]]\nlabel = "{label}"\nsize = "{size}"\nbus = "gpio"\nunit = 1\nchannel = {i}\n'
        for i, (label, size) in enumerate(LOCKERS)
    )
    text = _CONFIG.format(
        relays=[2 + i for i in range(len(LOCKERS))],
        sensors=[14 + i for i in range(len(LOCKERS))],
        count=len(LOCKERS),
        pulse=PULSE_MS,
        lockers=lockers,
    )
    path = workdir / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the keypad did not get there in time: {predicate}")
        await asyncio.sleep(0)


def _rss(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def ui_process_rss(config: Path, wait_s: float) -> dict[str, float]:
    """`python -m kiosk ui` on a pty for `wait_s` (connected and drawn), then its memory."""
    primary, secondary = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "ui", "--config", str(config)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    os.set_blocking(primary, False)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and proc.poll() is None:
            try:  # keep the pty drained so the app never blocks on a full buffer
                os.read(primary, 65536)
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                break
        if proc.poll() is not None:
            raise RuntimeError(f"kiosk ui exited early with {proc.returncode}")
        return _rss(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(primary)


async def _measure(config_path: Path, flows: int, rss_wait_s: float) -> dict[str, Any]:
    config = load_config(config_path)
    factory = MockFactory()
    bus = config.buses[0]
    pins = {
        lk.label: (bus.relay_pins[lk.channel], bus.sensor_pins[lk.channel]) for lk in config.lockers
    }
    doors = GpioDoorSim(factory, pins, tick_s=0.002)  # the figures of docs/benchmarks.md
    bank = GpioLockBank(
        "gpio",
        [GpioChannel(lk.channel, *pins[lk.label]) for lk in config.lockers],
        PULSE_MS,
        500,
        debounce_ms=0,
        pin_factory=factory,
    )
    daemon = Daemon(config, bank=bank, notifier=Notifier(""))
    await bank.start()
    doors.start()
    await daemon.start()
    admin = AsyncApiClient(str(config.api.socket))
    await admin.connect()
    first: list[int] = []  # the first digit also pushes the code-entry screen
    echo: list[int] = []
    opened: list[int] = []
    api_open: list[int] = []  # the pickup's code.submit alone: the daemon's share of a door
    # The same moments, up to the widgets holding the new state (before the paint).
    first_state: list[int] = []
    echo_state: list[int] = []
    opened_state: list[int] = []
    try:
        app = KioskApp(str(config.api.socket), idle_s=3600)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(lambda: app.link.up)
            for n in range(flows):
                parcel = await admin.call("parcels.announce", size="S")
                code = parcel["delivery_code"]
                for i, char in enumerate(code):
                    start = time.perf_counter_ns()
                    app.post_message(events.Key(char, char))
                    await _until(
                        lambda i=i: (
                            isinstance(app.screen, CodeScreen)
                            and app.screen.query(CodeDisplay)
                            and len(app.screen.query_one(CodeDisplay).digits) == i + 1
                        )
                    )
                    state = time.perf_counter_ns()
                    await app.screen.wait_for_refresh()  # ... and painted
                    (first if i == 0 else echo).append(time.perf_counter_ns() - start)
                    (first_state if i == 0 else echo_state).append(state - start)
                    await asyncio.sleep(GAP_S)  # untimed: the next key comes a moment later
                start = time.perf_counter_ns()
                app.post_message(events.Key("enter", "\r"))
                await _until(lambda: isinstance(app.screen, OpenScreen) and app.screen.is_mounted)
                opened_state.append(time.perf_counter_ns() - start)
                await app.screen.wait_for_refresh()
                opened.append(time.perf_counter_ns() - start)
                label = app.screen.locker
                relay = factory.pin(pins[label][0])
                doors.close(label)
                await _until(lambda: app.screen.finished == "delivered")
                # Untimed: the customer empties the locker again, through the same API.
                await _relay_idle(relay)
                start = time.perf_counter_ns()
                await admin.call("code.submit", code=parcel["pickup_code"])
                api_open.append(time.perf_counter_ns() - start)
                doors.close(label)
                await _until(lambda label=label: _free(daemon, label))
                await _relay_idle(relay)
                app.go_home()
                await pilot.pause()
                if n == 0:  # the first flow warms caches and imports
                    first.clear()
                    echo.clear()
                    opened.clear()
                    api_open.clear()
                    first_state.clear()
                    echo_state.clear()
                    opened_state.clear()
        rss = await asyncio.to_thread(ui_process_rss, config_path, rss_wait_s)
    finally:
        await admin.close()
        await asyncio.sleep(0.05)
        await doors.stop()
        await daemon.stop()
        factory.reset()
    return {
        "flows": len(opened),
        "latency_ms": {
            "first_digit": summarise(first, MS),
            "next_digit": summarise(echo, MS),
            "enter_to_open": summarise(opened, MS),
            "api_submit_to_open": summarise(api_open, MS),
            "first_digit_state": summarise(first_state, MS),
            "next_digit_state": summarise(echo_state, MS),
            "enter_to_open_state": summarise(opened_state, MS),
        },
        "ui_process_mib": rss,
    }


async def _relay_idle(relay: Any) -> None:
    """A lock is pulsed again only once its last pulse is over and the door simulator saw so.

    GpioLockBank does not restart a pulse still running, and the simulator
    (2 ms ticks) opens a door on a rising edge: a second pulse too soon would
    cost a door-open timeout that no person at the keypad causes.
    """
    while relay.state:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)


def _free(daemon: Daemon, label: str) -> bool:
    assert daemon.ledger is not None
    return daemon.ledger.parcels.locker(label).status.value == "AVAILABLE"


def run(workdir: Path, flows: int = 100, rss_wait_s: float = 3.0) -> dict[str, Any]:
    """Time `flows` deliveries typed at the keypad (one warm-up on top), then a UI's memory."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir)
    return asyncio.run(_measure(config, flows + 1, rss_wait_s))
