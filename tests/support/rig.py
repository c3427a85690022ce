"""The service rig: a LockerService on a real GpioLockBank (MockFactory pins) and ledger."""

from __future__ import annotations

from dataclasses import dataclass

from gpiozero.pins.mock import MockFactory

from firmware_bridge.gpio import GpioChannel, GpioLockBank
from kiosk.config.model import LockerConfig, PolicyConfig
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService
from support.clock import FakeClock
from support.physics import GpioDoorPhysics

#: label, size: a small bank with every size and a label that sorts naturally (A-10).
DEFAULT_LOCKERS = [
    ("A-1", "S"),
    ("A-2", "S"),
    ("A-10", "S"),
    ("B-1", "M"),
    ("B-2", "M"),
    ("C-1", "L"),
]

FAST_POLICY = PolicyConfig(door_open_timeout_s=0.25, unlock_retries=1)


@dataclass
class Bank:
    service: LockerService
    ledger: Ledger
    clock: FakeClock
    doors: GpioDoorPhysics
    gpio: GpioLockBank
    key: bytes
    path: str


def build_bank(
    path: str, factory: MockFactory, key: bytes, clock: FakeClock,
    lockers: list[tuple[str, str]] | None = None, policy: PolicyConfig = FAST_POLICY,
) -> Bank:  # fmt: skip
    specs = lockers or DEFAULT_LOCKERS
    configs = tuple(
        LockerConfig(label, Size(size), "gpio", 1, index)
        for index, (label, size) in enumerate(specs)
    )
    pins = {label: (2 + index, 14 + index) for index, (label, _) in enumerate(specs)}
    gpio = GpioLockBank(
        "gpio",
        [GpioChannel(i, pins[label][0], pins[label][1]) for i, (label, _) in enumerate(specs)],
        pulse_ms=60, max_pulse_ms=500, debounce_ms=0, pin_factory=factory,
    )  # fmt: skip
    ledger = Ledger.open(path)
    service = LockerService.build(ledger, gpio, clock, key, configs, policy, "test-site", 0.005)
    return Bank(service, ledger, clock, GpioDoorPhysics(factory, pins), gpio, key, path)
