"""`kiosk run`'s logging: to stderr (the journal under systemd), start-up lines held until ready.

A start that fails must end in ONE line on stderr naming what failed. What
the daemon logged on its way there (a board found offline, "daemon stopped")
only repeats that line in other words, so start-up records are held back:
released in order once the daemon is ready (or after START_HOLD_S, so a slow
start is not silent), dropped when the start fails with a known reason, and
written beside the trace when it fails with an unexpected one. `kiosk run -v`
holds nothing back.
"""

from __future__ import annotations

import logging
import sys

#: Held start-up lines are released after this long even if the daemon is not ready yet (s).
START_HOLD_S = 10.0
FORMAT = "%(levelname)s %(name)s: %(message)s"


class HeldLog(logging.Handler):
    """Passes records to `target`; while holding, keeps them instead, in order."""

    def __init__(self, target: logging.Handler, holding: bool = True) -> None:
        super().__init__()
        self.target = target
        self.holding = holding
        self.held: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.holding:
            self.held.append(record)
        else:
            self.target.handle(record)

    def let_go(self) -> None:
        """Pass the held records on, and every later one straight through."""
        held, self.held, self.holding = self.held, [], False
        for record in held:
            self.target.handle(record)

    def discard(self) -> list[logging.LogRecord]:
        """Stop holding; the held records are returned, not passed on."""
        held, self.held, self.holding = self.held, [], False
        return held


def start_logging(verbose: bool) -> HeldLog:
    """Root logging for `kiosk run`: INFO (DEBUG with -v) to stderr, held until ready."""
    target = logging.StreamHandler(sys.stderr)
    target.setFormatter(logging.Formatter(FORMAT))
    held = HeldLog(target, holding=not verbose)
    root = logging.getLogger()
    root.addHandler(held)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return held


def formatted(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter(FORMAT)
    return [formatter.format(record) for record in records]
