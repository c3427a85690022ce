"""An in-process daemon on a real GPIO bank (MockFactory pins + door physics) and a real socket."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from firmware_bridge.gpio import GpioChannel, GpioLockBank
from firmware_bridge.gpio_sim import GpioDoorSim
from kiosk.config.loader import parse_config
from kiosk.config.model import KioskConfig
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier

LOCKERS = [("A-1", "S"), ("A-2", "S"), ("B-1", "M"), ("C-1", "L")]


def rig_config(state: Path, lockers=LOCKERS, policy: dict[str, Any] | None = None) -> KioskConfig:
    key = state / "site-code.key"
    if not key.exists():
        key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    data: dict[str, Any] = {
        "site": {"id": "rig-01", "name": "Rig", "lat": 52.5, "lon": 13.4},
        "ledger": {"path": "ledger.db"},
        "keys": {"site_code_key_file": "site-code.key"},
        "api": {"socket": "kiosk.sock"},
        "bus": [{
            "name": "gpio", "kind": "gpio", "pin_factory": "mock", "debounce_ms": 0,
            "poll_ms": 20,
            "relay_pins": [2 + i for i in range(len(lockers))],
            "sensor_pins": [14 + i for i in range(len(lockers))],
        }],
        "board": [{"bus": "gpio", "unit": 1, "profile": "gpio", "channels": len(lockers),
                   "pulse_ms": 60, "max_pulse_ms": 500}],
        "locker": [{"label": label, "size": size, "bus": "gpio", "unit": 1, "channel": i}
                   for i, (label, size) in enumerate(lockers)],
        "policy": {"door_open_timeout_s": 0.5, "unlock_retries": 1, **(policy or {})},
    }  # fmt: skip
    return parse_config(data, state / "kiosk.toml")


class DaemonRig:
    def __init__(self, state: Path, notifier: Notifier | None = None, **config_kw: Any) -> None:
        self.config = rig_config(state, **config_kw)
        self.factory = MockFactory()
        bus = self.config.buses[0]
        pins = {lk.label: (bus.relay_pins[lk.channel], bus.sensor_pins[lk.channel])
                for lk in self.config.lockers}  # fmt: skip
        self.doors = GpioDoorSim(self.factory, pins)
        self.bank = GpioLockBank(
            "gpio", [GpioChannel(lk.channel, *pins[lk.label]) for lk in self.config.lockers],
            60, 500, debounce_ms=0, pin_factory=self.factory,
        )  # fmt: skip
        self.daemon = Daemon(self.config, bank=self.bank, notifier=notifier or Notifier(""))
        self.socket = str(self.config.api.socket)

    async def __aenter__(self) -> DaemonRig:
        await self.bank.start()  # claim the pins (pull-ups read open) ...
        self.doors.start()  # ... shut the doors ...
        await self.daemon.start()  # ... then the daemon reads them
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.doors.stop()
        await self.daemon.stop()
        self.factory.reset()
