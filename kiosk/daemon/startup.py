"""The lock bank's start-up failures as one KioskError each, with its sysexits code.

78 (EX_CONFIG) when a board answers but not as the config describes it, 69
(EX_UNAVAILABLE) when a port, gateway or board is not there or cannot be used.
"""

from __future__ import annotations

from firmware_bridge.bank import BridgeError
from kiosk.domain.errors import DeviceUnavailable, StartConfigError, StartError
from kiosk.files import one_line

#: Bridge error codes that mean "the config does not describe the board that answered".
_CONFIG_MISMATCH = {"wrong_register_map", "board_refused", "unknown_channel"}


def bridge_failure(exc: BridgeError) -> StartError:
    """The lock bank could not start: a config mismatch (78) or a device not there (69)."""
    kind = StartConfigError if exc.code in _CONFIG_MISMATCH else DeviceUnavailable
    return kind(one_line(f"cannot start: {exc}"), bridge_code=exc.code)
