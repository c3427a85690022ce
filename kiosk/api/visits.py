"""Which visit opened which door: the keypad's right to reopen it or report it, nothing more.

A code that opens a door gets a visit token in its answer. `door.reopen` and
`door.report` take that token, so a reopen is never a free door-open for
anyone at the keypad: only the visit that opened the door, for a few minutes,
each kind of request once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

#: How long a visit may come back to its door, seconds.
VISIT_S = 300.0


@dataclass
class Visit:
    locker: str
    role: str
    parcel_id: str | None
    started: float
    used: set[str] = field(default_factory=set)  # "didnt_open", "left_something", "report"


class Visits:
    def __init__(self, clock: Callable[[], float], ttl_s: float = VISIT_S) -> None:
        self.clock, self.ttl_s = clock, ttl_s
        self._visits: dict[str, Visit] = {}

    def grant(self, locker: str, role: str, parcel_id: str | None) -> str:
        now = self.clock()
        self._visits = {t: v for t, v in self._visits.items() if now - v.started < self.ttl_s}
        token = secrets.token_urlsafe(16)
        self._visits[token] = Visit(locker, role, parcel_id, now)
        return token

    def take(self, token: object, what: str) -> Visit | None:
        """The live visit of `token` if it has not asked for `what` yet (marking it asked)."""
        visit = self._visits.get(token) if isinstance(token, str) else None
        if visit is None or self.clock() - visit.started >= self.ttl_s or what in visit.used:
            return None
        visit.used.add(what)
        return visit
