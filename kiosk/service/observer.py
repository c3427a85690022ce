"""The service's observer port: what it tells a watcher (metrics) as it works; no-op by default.

The service calls these after the fact (the ledger's transaction has
committed); an observer must be quick and must not raise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

#: `door_operation` results: the door was seen open; it stayed shut after every pulse;
#: the board did not take the pulse; the door could not be read after the pulse.
DOOR_RESULTS = ("opened", "jammed", "unreachable", "unknown")


class ServiceObserver(Protocol):
    def door_operation(self, result: str) -> None:
        """One door operation ended its unlock phase with `result` (one of DOOR_RESULTS)."""

    def code_failure(self) -> None:
        """A wrong code was typed (keypad or `kiosk code`)."""

    def selftest(self, at: datetime) -> None:
        """A sensor sweep (`kiosk selftest`, the maintenance screen) read the doors at `at`."""


class NoObserver:
    def door_operation(self, result: str) -> None:
        pass

    def code_failure(self) -> None:
        pass

    def selftest(self, at: datetime) -> None:
        pass
