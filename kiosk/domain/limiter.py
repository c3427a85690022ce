"""The code-entry limiter: consecutive-failure back-off and a daily site-wide failure budget.

Pure: state in, state out. The ledger stores the state so that a lockout
survives a restart; every code entry (keypad, API, `kiosk code`) passes here.

Why both: with 100 active 6-digit codes a guess hits with p = 1e-4. Back-off
alone still lets a patient guesser try ~96 times a day; the daily budget caps
the site at `daily_budget` failures a day, after which entry stays locked
until a technician or the cloud resets it (see docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kiosk.domain.errors import LockedOut, SiteLocked


@dataclass(frozen=True)
class LimiterState:
    consecutive: int = 0  # failures since the last good code
    lockouts: int = 0  # back-offs applied since the last good code (drives the doubling)
    locked_until: datetime | None = None
    day: str = ""  # UTC date the daily count belongs to
    day_failures: int = 0
    site_locked: bool = False


@dataclass(frozen=True)
class LimiterPolicy:
    max_failures: int = 5
    backoff_first_s: int = 30
    backoff_max_s: int = 900
    daily_budget: int = 20

    def check(self, state: LimiterState, now: datetime) -> None:
        """Raise SiteLocked or LockedOut (with retry_after seconds) when entry is closed."""
        if state.site_locked:
            raise SiteLocked()
        if state.locked_until is not None and now < state.locked_until:
            wait = max(1, int((state.locked_until - now).total_seconds() + 0.999))
            raise LockedOut(
                f"Too many wrong codes. Please wait {wait} seconds and try again.",
                retry_after=wait,
            )

    def tries_left(self, state: LimiterState) -> int:
        """Wrong codes left before the next back-off."""
        if state.consecutive < self.max_failures:
            return self.max_failures - state.consecutive
        return 0

    def on_failure(self, state: LimiterState, now: datetime) -> tuple[LimiterState, bool]:
        """The state after one wrong code, and whether this failure locked the whole site."""
        today = now.astimezone(UTC).date().isoformat()
        day_failures = (state.day_failures if state.day == today else 0) + 1
        consecutive = state.consecutive + 1
        lockouts = state.lockouts
        locked_until = state.locked_until
        if consecutive >= self.max_failures:
            lockouts += 1
            seconds = min(self.backoff_first_s * 2 ** (lockouts - 1), self.backoff_max_s)
            locked_until = now + timedelta(seconds=seconds)
        site_locked = state.site_locked or day_failures >= self.daily_budget
        new = LimiterState(consecutive, lockouts, locked_until, today, day_failures, site_locked)
        return new, site_locked and not state.site_locked

    def on_success(self, state: LimiterState) -> LimiterState:
        """A good code ends the run of failures (the daily count stays)."""
        return replace(state, consecutive=0, lockouts=0, locked_until=None)

    def reset(self, state: LimiterState) -> LimiterState:
        """A technician's or the cloud's reset: entry open again, today's count cleared."""
        return replace(
            state, consecutive=0, lockouts=0, locked_until=None, day_failures=0, site_locked=False
        )
