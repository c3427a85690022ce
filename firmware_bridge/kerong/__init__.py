"""Kerong KR-CU lock boards (KR-CU16, KR-CU12) on RS-485: codec, one bus owner, the bank."""

from firmware_bridge.kerong.bank import PROFILE, KerongBoardSpec, KerongLockBank
from firmware_bridge.kerong.bus import BoardSilent, KerongBus, KerongBusSettings

__all__ = [
    "PROFILE",
    "BoardSilent",
    "KerongBoardSpec",
    "KerongBus",
    "KerongBusSettings",
    "KerongLockBank",
]
