"""Audit rows for a wrong code or PIN and for the lockouts it causes: never the digits typed.

One row per wrong entry (`code.failed`, `technician.login_failed`), one more
when that entry starts a back-off (`code.backoff`, `pin.backoff`) and one
when it spends the day's budget (`code.lockout`, `pin.lockout`). Written in
the caller's transaction, beside the limiter state they describe, so the
audit log and the limiter never disagree. The detail holds counts, the
entry path and the lockout's length; the typed digits, even wrong ones, are
not stored anywhere (a wrong code is often a right code mistyped by one
digit).
"""

from __future__ import annotations

from datetime import datetime

from kiosk.domain.limiter import LimiterState
from kiosk.ledger.db import Ledger

#: Audit actions per entry: (one wrong entry, a back-off started, the daily budget spent).
ACTIONS = {
    "code": ("code.failed", "code.backoff", "code.lockout"),
    "pin": ("technician.login_failed", "pin.backoff", "pin.lockout"),
}


def audit_failure(
    ledger: Ledger,
    now: datetime,
    entry: str,
    subject: str,
    before: LimiterState,
    after: LimiterState,
    source: str,
) -> None:
    """The audit rows for one wrong `entry` ("code" or "pin"), `before` -> `after` the limiter."""
    failed, backoff, lockout = ACTIONS[entry]
    counts = {"in_a_row": after.consecutive, "today": after.day_failures}
    ledger.audit.record(now, "kiosk", failed, subject, source=source, **counts)
    if after.lockouts > before.lockouts and after.locked_until is not None:
        seconds = int((after.locked_until - now).total_seconds())
        ledger.audit.record(now, "kiosk", backoff, subject, seconds=seconds, **counts)
    if after.site_locked and not before.site_locked:
        ledger.audit.record(
            now, "kiosk", lockout, subject, day=after.day, failures=after.day_failures
        )
