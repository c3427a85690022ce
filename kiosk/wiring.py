"""The composition root: the one place that picks real, simulated or GPIO backends from config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_bridge.bank import LockBank
from firmware_bridge.multibank import MultiBank
from kiosk.clock import Clock
from kiosk.config.model import BoardConfig, BusConfig, KioskConfig
from kiosk.domain.codes import parse_code_key
from kiosk.domain.errors import ConfigError
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService
from kiosk.service.observer import ServiceObserver

if TYPE_CHECKING:
    from firmware_bridge.modbus import BoardSpec, BusSettings


def read_code_key(config: KioskConfig) -> bytes:
    path = Path(config.keys.site_code_key_file)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(config.source), "keys.site_code_key_file", f"cannot read {path}: {exc}"
        ) from exc
    return parse_code_key(text, str(path))


def _board_spec(board: BoardConfig) -> BoardSpec:
    from firmware_bridge.modbus import BoardSpec  # loaded only when a Modbus bus is configured

    return BoardSpec(
        bus=board.bus,
        unit=board.unit,
        profile=board.profile,
        channels=board.channels,
        pulse_ms=board.pulse_ms,
        max_pulse_ms=board.max_pulse_ms,
        sensor_open_high=board.sensor_open_high,
        ir_sensors=board.ir_sensors,
    )


def modbus_settings(bus: BusConfig, retries: int | None = None) -> BusSettings:
    """How to reach a modbus-rtu or modbus-tcp bus of the config: its BusSettings.

    `retries` replaces the bus's own (a scan asks each unit once: 0).
    """
    from firmware_bridge.modbus import BusSettings

    return BusSettings(
        bus.name,
        "rtu" if bus.kind == "modbus-rtu" else "tcp",
        device=bus.device or "",
        baudrate=bus.baudrate,
        host=bus.host or "",
        port=bus.tcp_port or 502,
        timeout_s=bus.timeout_s,
        retries=bus.retries if retries is None else retries,
    )


def build_lock_bank(
    config: KioskConfig, pin_factory: Any = None, bus_observer: Any = None
) -> LockBank:
    """One LockBank for every bus in config. `pin_factory` overrides gpiozero's for gpio buses.

    `bus_observer` (firmware_bridge.modbus.bus.RequestObserver) is told of every Modbus and
    kerong-cu request.
    """
    banks: dict[str, LockBank] = {}
    for bus in config.buses:
        if bus.kind == "gpio":
            banks[bus.name] = _gpio_bank(config, bus.name, pin_factory)
        elif bus.kind in ("modbus-rtu", "modbus-tcp"):
            # One ModbusLockBank per bus: it owns that bus's client (one owner per bus).
            from firmware_bridge.modbus import ModbusBus, ModbusLockBank

            settings = modbus_settings(bus)
            specs = [_board_spec(b) for b in config.boards if b.bus == bus.name]
            try:
                banks[bus.name] = ModbusLockBank(
                    [ModbusBus(settings, observer=bus_observer)], specs
                )
            except ValueError as exc:
                raise ConfigError(str(config.source), f"bus {bus.name!r}", str(exc)) from exc
        elif bus.kind == "kerong-cu":
            banks[bus.name] = _kerong_bank(config, bus, bus_observer)
        else:  # simulated: the built-in board on a pty, through the real Modbus backend
            from firmware_bridge.simboard.bank import SimulatedLockBank

            specs = [_board_spec(b) for b in config.boards if b.bus == bus.name]
            banks[bus.name] = SimulatedLockBank(
                bus.name, specs, bus.door_close_s, bus.timeout_s, bus.retries, observer=bus_observer
            )
    return MultiBank(banks)


def _kerong_bank(config: KioskConfig, bus: BusConfig, observer: Any) -> LockBank:
    """One KerongLockBank per kerong-cu bus: it owns that bus's serial port."""
    from firmware_bridge.kerong import KerongBoardSpec, KerongBus, KerongBusSettings, KerongLockBank

    settings = KerongBusSettings(
        bus.name, bus.device or "", bus.baudrate, bus.timeout_s, bus.retries
    )
    specs = [
        KerongBoardSpec(b.bus, b.unit, b.channels, ir_sensors=b.ir_sensors)
        for b in config.boards
        if b.bus == bus.name
    ]
    try:
        return KerongLockBank(KerongBus(settings, observer=observer), specs)
    except ValueError as exc:
        raise ConfigError(str(config.source), f"bus {bus.name!r}", str(exc)) from exc


def _gpio_bank(config: KioskConfig, name: str, pin_factory: Any) -> LockBank:
    from firmware_bridge.gpio import GpioChannel, GpioLockBank

    bus = next(b for b in config.buses if b.name == name)
    board = next(b for b in config.boards if b.bus == name)
    if pin_factory is None and bus.pin_factory == "mock":
        from gpiozero.pins.mock import MockFactory

        pin_factory = MockFactory()
    presence: list[int | None] = list(bus.presence_pins) or [None] * len(bus.relay_pins)
    channels = [
        GpioChannel(i, relay, sensor, seen)
        for i, (relay, sensor, seen) in enumerate(
            zip(bus.relay_pins, bus.sensor_pins, presence, strict=True)
        )
    ]
    return GpioLockBank(
        name,
        channels,
        board.pulse_ms,
        board.max_pulse_ms,
        relay_active_high=bus.relay_active_high,
        sensor_open_high=bus.sensor_open_high,
        pull_up=bus.pull_up,
        debounce_ms=bus.debounce_ms,
        pin_factory=pin_factory,
    )


def build_service(
    config: KioskConfig,
    bank: LockBank,
    clock: Clock,
    ledger: Ledger | None = None,
    observer: ServiceObserver | None = None,
) -> LockerService:
    """The locker service on the configured ledger (opened, checked, migrated)."""
    ledger = ledger or Ledger.open(config.ledger.path)
    poll_s = min((b.poll_ms for b in config.buses), default=100) / 1000
    return LockerService.build(
        ledger,
        bank,
        clock,
        read_code_key(config),
        config.lockers,
        config.policy,
        config.site.id,
        poll_s,
        observer,
    )
