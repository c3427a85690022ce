"""A lock board's defaults, the one place they are written: the driver's and the config's.

Plain values, importing nothing: kiosk.config takes its [[board]] defaults from here,
and the driver (firmware_bridge.modbus.BoardSpec, the commissioning of a board not yet
configured) uses them where no config is given.
"""

from __future__ import annotations

#: The register map a [[board]] speaks when it names no `profile`.
PROFILE = "kiosk-v1"
#: Locks on a board when its [[board]] does not say.
CHANNELS = 16
#: The unlock pulse (ms), and the longest the board may ever energise a lock (ms).
PULSE_MS = 500
MAX_PULSE_MS = 2000
