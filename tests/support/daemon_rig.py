"""An in-process daemon on a real lock bank and a real socket.

Two backends, one door-physics interface (`rig.doors`, support.doors.DoorPhysics):

* "gpio": a GpioLockBank on gpiozero's MockFactory pins, doors moved by the
  product's GpioDoorSim;
* "modbus": the `simulated` bus kind as `kiosk demo` runs it: the real
  ModbusLockBank, pymodbus's RTU framing over a real pty, answered by a SimBus
  whose kiosk-v1 board carries the doors.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from firmware_bridge.gpio import GpioChannel, GpioLockBank
from firmware_bridge.gpio_sim import GpioDoorSim
from firmware_bridge.multibank import MultiBank
from firmware_bridge.simboard.bank import SimulatedLockBank
from kiosk.config.loader import parse_config
from kiosk.config.model import KioskConfig
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier
from kiosk.wiring import build_lock_bank
from support.doors import DoorPhysics, SimDoorPhysics
from support.rig import SIM_SILENCE_TIMEOUT_S, SIM_TIMEOUT_S

LOCKERS = [("A-1", "S"), ("A-2", "S"), ("B-1", "M"), ("C-1", "L")]
BACKENDS = ("gpio", "modbus")
#: The simulated bus: one kiosk-v1 board (unit 1), a locker per channel.
SIM_BUS = "rs485"
#: A pulsed door of the simulated board springs open this long after its pulse starts (s).
SIM_OPEN_DELAY_S = 0.01


#: gpio presence_pins (rig_config's `presence`): locker i's IR sensor is BCM PRESENCE_PIN0 + i.
PRESENCE_PIN0 = 22


def _bus(
    backend: str, lockers: list[tuple[str, str]], silence: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The [[bus]] and [[board]] tables of a backend (`silence`: see SIM_TIMEOUT_S)."""
    if backend == "gpio":
        bus = {
            "name": "gpio",
            "kind": "gpio",
            "pin_factory": "mock",
            "debounce_ms": 0,
            "poll_ms": 20,
            "relay_pins": [2 + i for i in range(len(lockers))],
            "sensor_pins": [14 + i for i in range(len(lockers))],
        }
        return bus, {
            "bus": "gpio",
            "unit": 1,
            "profile": "gpio",
            "channels": len(lockers),
            "pulse_ms": 60,
            "max_pulse_ms": 500,
        }
    if backend == "modbus":
        # Doors stay open until a test shuts them; a reply is awaited SIM_TIMEOUT_S, or
        # SIM_SILENCE_TIMEOUT_S where the test makes a board silent (it costs little).
        bus = {
            "name": SIM_BUS,
            "kind": "simulated",
            "door_close_s": 0,
            "poll_ms": 20,
            "timeout_s": SIM_SILENCE_TIMEOUT_S if silence else SIM_TIMEOUT_S,
            "retries": 2,
        }
        return bus, {
            "bus": SIM_BUS,
            "unit": 1,
            "profile": "kiosk-v1",
            "channels": max(len(lockers), 4),
            "pulse_ms": 150,
            "max_pulse_ms": 500,
        }
    raise ValueError(f"unknown backend {backend!r}; one of {BACKENDS}")


def rig_config(
    state: Path,
    lockers=LOCKERS,
    policy: dict[str, Any] | None = None,
    backend: str = "gpio",
    presence: bool = False,
    silence: bool = False,
    site: dict[str, Any] | None = None,
) -> KioskConfig:
    """`presence` (gpio): an IR parcel-presence sensor per locker (`presence_pins`);
    `silence` (modbus): the short reply timeout of a test that waits out a silent board."""
    key = state / "site-code.key"
    if not key.exists():
        key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    bus, board = _bus(backend, lockers, silence)
    if presence:
        assert backend == "gpio", "presence sensors in the daemon rig: gpio presence_pins"
        bus["presence_pins"] = [PRESENCE_PIN0 + i for i in range(len(lockers))]
    data: dict[str, Any] = {
        "site": {"id": "rig-01", "name": "Rig", "lat": 52.5, "lon": 13.4, **(site or {})},
        "ledger": {"path": "ledger.db"},
        "keys": {"site_code_key_file": "site-code.key"},
        "api": {"socket": "kiosk.sock"},
        "bus": [bus],
        "board": [board],
        "locker": [
            {"label": label, "size": size, "bus": bus["name"], "unit": 1, "channel": i}
            for i, (label, size) in enumerate(lockers)
        ],
        "policy": {"door_open_timeout_s": 0.5, "unlock_retries": 1, **(policy or {})},
    }
    return parse_config(data, state / "kiosk.toml")


class DaemonRig:
    def __init__(
        self,
        state: Path,
        notifier: Notifier | None = None,
        backend: str = "gpio",
        **config_kw: Any,
    ) -> None:
        self.backend = backend
        self.config = rig_config(state, backend=backend, **config_kw)
        self.factory = MockFactory()
        self.doors: DoorPhysics
        self.bank: GpioLockBank | MultiBank
        if backend == "gpio":
            bus = self.config.buses[0]
            pins = {
                lk.label: (bus.relay_pins[lk.channel], bus.sensor_pins[lk.channel])
                for lk in self.config.lockers
            }
            self.doors = GpioDoorSim(self.factory, pins)
            presence = dict(enumerate(bus.presence_pins))
            self.bank = GpioLockBank(
                "gpio",
                [
                    GpioChannel(lk.channel, *pins[lk.label], presence.get(lk.channel))
                    for lk in self.config.lockers
                ],
                60,
                500,
                debounce_ms=0,
                pin_factory=self.factory,
            )
        else:  # the product's own wiring of the `simulated` bus kind
            bank = build_lock_bank(self.config)
            assert isinstance(bank, MultiBank)
            sim_bank = bank.banks[SIM_BUS]
            assert isinstance(sim_bank, SimulatedLockBank)
            for door in sim_bank.sim[1].doors:
                door.open_delay_s = SIM_OPEN_DELAY_S
            where = {lk.label: (lk.unit, lk.channel) for lk in self.config.lockers}
            self.doors = SimDoorPhysics(sim_bank.sim, where)
            self.bank = bank
        self.notifier = notifier or Notifier("")
        self.daemon = Daemon(self.config, bank=self.bank, notifier=self.notifier)
        self.socket = str(self.config.api.socket)

    def put(self, label: str, inside: bool = True) -> None:
        """gpio presence_pins: the IR sensor of `label` sees something (pulls its pin low)."""
        bus = self.config.buses[0]
        channel = next(lk.channel for lk in self.config.lockers if lk.label == label)
        pin = self.factory.pin(bus.presence_pins[channel])
        if inside:
            pin.drive_low()
        else:
            pin.drive_high()

    async def __aenter__(self) -> DaemonRig:
        await self.bank.start()  # claim the pins (pull-ups read open) ...
        self.doors.start()  # ... shut the doors ...
        await self.daemon.start()  # ... then the daemon reads them
        return self

    async def restart(self) -> None:
        """`systemctl restart` (gpio): the daemon stops, a new one starts on the same ledger
        file, pins and doors. A door open before is open after, and each presence sensor
        sees what it saw (claiming a pin with its pull-up would drive it high)."""
        assert self.backend == "gpio", "restart: the gpio rig"
        labels = [lk.label for lk in self.config.lockers]
        was_open = {label for label in labels if self.doors.is_open(label)}
        pins = self.config.buses[0].presence_pins
        seen = {pin: self.factory.pin(pin).state for pin in pins}
        await self.doors.stop()  # releasing a relay pin reads as an edge, not a pulse
        await self.daemon.stop()
        await self.bank.start()  # claimed again before the new daemon reads anything
        self.doors.start()  # all shut, watching the relays from here on
        for label in was_open:
            self.doors.open(label)
        for pin, state in seen.items():
            if state:
                self.factory.pin(pin).drive_high()
            else:
                self.factory.pin(pin).drive_low()
        self.daemon = Daemon(self.config, bank=self.bank, notifier=self.notifier)
        await self.daemon.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.doors.stop()
        await self.daemon.stop()
        self.factory.reset()
