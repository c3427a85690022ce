"""Demote pymodbus's per-request failure log lines to DEBUG: the bus logs each outage once.

pymodbus logs every unanswered request at ERROR (and failed connects at
WARNING) on the `pymodbus.logging` logger. With a board unplugged and the
doors polled every 100 ms that is ten lines a second. `ModbusBus` counts
those failures per board and logs "offline" once and "back online" once, so
these lines are demoted to DEBUG: kept only if that logger is enabled for
DEBUG. Every other pymodbus message passes unchanged.
"""

from __future__ import annotations

import logging

PYMODBUS_LOGGER = "pymodbus.logging"

#: How the demoted messages start (pymodbus 3.16's wording).
NOISE = (
    "No response received",
    "Failed to connect",
    "Unable to decode",
    "ERROR: request ask for id",
    "ERROR: received pdu without",
    "Not connected, trying",
    "Cancel send, because not connected",
)


class DemotePymodbusNoise(logging.Filter):
    """A logger filter: NOISE records become DEBUG records, dropped unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.CRITICAL and record.getMessage().startswith(NOISE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(PYMODBUS_LOGGER).isEnabledFor(logging.DEBUG)
        return True


def install_pymodbus_log_filter() -> None:
    """Add the filter to pymodbus's logger once (idempotent)."""
    logger = logging.getLogger(PYMODBUS_LOGGER)
    if not any(isinstance(f, DemotePymodbusNoise) for f in logger.filters):
        logger.addFilter(DemotePymodbusNoise())
