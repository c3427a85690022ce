"""Modbus RTU/TCP lock boards: pure profiles, one bus owner per bus, and the ModbusLockBank."""

from firmware_bridge.modbus.bank import BoardSpec, ModbusLockBank
from firmware_bridge.modbus.bus import BoardHealth, BusSettings, ModbusBus, frame_gap_s
from firmware_bridge.modbus.errors import (
    BoardNotAnswering,
    BoardRefused,
    BusUnavailable,
    SerialPermissionDenied,
    SerialPortMissing,
    WrongRegisterMap,
)
from firmware_bridge.modbus.profiles import (
    KioskV1Profile,
    WaveshareRelayDProfile,
    profile_for,
)

__all__ = [
    "BoardHealth",
    "BoardNotAnswering",
    "BoardRefused",
    "BoardSpec",
    "BusSettings",
    "BusUnavailable",
    "KioskV1Profile",
    "ModbusBus",
    "ModbusLockBank",
    "SerialPermissionDenied",
    "SerialPortMissing",
    "WaveshareRelayDProfile",
    "WrongRegisterMap",
    "frame_gap_s",
    "profile_for",
]
