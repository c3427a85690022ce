"""firmware_bridge: talking to lock hardware, nothing else (knows nothing of parcels)."""

from firmware_bridge.bank import (
    BoardInfo,
    BridgeError,
    ChannelRef,
    DoorState,
    LockBank,
    UnknownChannel,
)

__all__ = [
    "BoardInfo",
    "BridgeError",
    "ChannelRef",
    "DoorState",
    "LockBank",
    "UnknownChannel",
]
