"""Modbus bus errors, each naming what went wrong where and its fix; and the serial port check."""

from __future__ import annotations

import os

from firmware_bridge.bank import BoardUnavailable, BridgeError


class SerialPortMissing(BoardUnavailable):
    """The configured serial device does not exist (adapter unplugged, wrong path)."""

    code = "serial_port_missing"

    def __init__(self, bus: str, device: str) -> None:
        super().__init__(
            f"bus {bus!r}: serial port {device} does not exist",
            fix=f"check the USB/RS-485 adapter's cable, that `ls -l {device}` shows it, "
            "and the udev rule that names it; or fix the bus's `port` in the config",
        )
        self.device = device


class SerialPermissionDenied(BoardUnavailable):
    """The daemon's user may not open the serial device."""

    code = "serial_permission_denied"

    def __init__(self, bus: str, device: str) -> None:
        super().__init__(
            f"bus {bus!r}: permission denied opening serial port {device}",
            fix="add the daemon's user to the `dialout` group "
            "(`usermod -aG dialout USER`, then log in again or restart the service), "
            "or give the device that group in its udev rule",
        )
        self.device = device


def check_serial_device(bus: str, device: str) -> None:
    """Raise SerialPortMissing or SerialPermissionDenied before the open hides the reason.

    pymodbus's `connect()` only returns False; this says which path and what to do
    (the Kerong bus checks its port the same way). The effective ids are checked, as
    open() will use them.
    """
    if not os.path.exists(device):
        raise SerialPortMissing(bus, device)
    effective = os.access in os.supports_effective_ids
    if not os.access(device, os.R_OK | os.W_OK, effective_ids=effective):
        raise SerialPermissionDenied(bus, device)


class BusUnavailable(BoardUnavailable):
    """The port or TCP address could not be opened for another reason (busy, refused)."""

    code = "bus_unavailable"


class BoardNotAnswering(BoardUnavailable):
    """A board that stays silent through every retry."""

    code = "board_not_answering"

    def __init__(self, bus: str, unit: int, attempts: int, tcp: bool = False) -> None:
        fix = (
            "check the unit id, that the gateway is powered and reachable, and its serial "
            "side (A/B wiring, termination, baud rate)"
            if tcp
            else "check the unit id with the board's DIP switches (it must match the "
            "board's `unit` in the config), the A/B wiring (swap A and B if in "
            "doubt), 120 ohm termination at both ends of the bus, power, and that the "
            "board's baud rate matches the bus's `baudrate`"
        )
        super().__init__(f"bus {bus!r}: board {unit} did not answer ({attempts} attempts)", fix=fix)
        self.unit = unit


class WrongRegisterMap(BridgeError):
    """A board that answers, but not with the register map (or size) the config expects."""

    code = "wrong_register_map"


class BoardRefused(BridgeError):
    """A board that answered a request with a Modbus exception (illegal address, busy...)."""

    code = "board_refused"

    def __init__(self, bus: str, unit: int, what: str, exception_code: int) -> None:
        super().__init__(
            f"bus {bus!r}: board {unit} refused {what} with Modbus exception {exception_code}",
            fix="check the board's `profile` and `channels` in the config against the board",
        )
        self.unit = unit
        self.exception_code = exception_code
