"""An unexpected exception: one line on stderr, and the full trace where it can be read later.

Under systemd stderr IS the journal (systemd says so in $JOURNAL_STREAM): the
trace is written there, and the line says `journalctl -u kiosk`. Anywhere
else (a terminal, a script) the trace goes to a new file in the temp folder,
and the line names that file: the operator's screen gets one line either way.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from typing import TextIO

from kiosk.files import one_line

JOURNAL_HINT = "the journal: journalctl -u kiosk"


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    """True when $JOURNAL_STREAM names the very file stderr is (systemd's own test)."""
    stream = stream or sys.stderr
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (info.st_dev, info.st_ino) == (int(dev), int(ino))


def report_crash(exc: BaseException, log_lines: Sequence[str] = ()) -> str:
    """Write `log_lines` and the trace of `exc` away from the screen; return the one line."""
    trace = "".join(traceback.format_exception(exc))
    text = "".join(f"{line}\n" for line in log_lines) + trace
    if stderr_is_journal():
        sys.stderr.write(text)
        sys.stderr.flush()
        where = JOURNAL_HINT
    else:
        try:
            with tempfile.NamedTemporaryFile(
                "w", prefix="kiosk-trace-", suffix=".txt", delete=False
            ) as out:
                out.write(text)
            where = out.name
        except OSError as write_error:
            where = f"nowhere (cannot write a trace file: {write_error.strerror})"
    summary = one_line(f"{type(exc).__name__}: {exc}")[:300]
    return f"error: unexpected {summary}; this is a bug: full trace in {where}"
