"""Technician sessions: a PIN login gives a token that expires when idle."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Session:
    token: str
    technician_id: str
    last_used: float


class Sessions:
    """In-memory tokens (a daemon restart logs everyone out, which is the safe side)."""

    def __init__(self, idle_s: float, monotonic: Callable[[], float]) -> None:
        self.idle_s = idle_s
        self._now = monotonic
        self._by_token: dict[str, Session] = {}

    def open(self, technician_id: str) -> Session:
        session = Session(secrets.token_urlsafe(24), technician_id, self._now())
        self._by_token[session.token] = session
        return session

    def touch(self, token: str | None) -> Session | None:
        """The live session of `token` (its idle timer restarted), or None."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        now = self._now()
        if now - session.last_used > self.idle_s:
            del self._by_token[token]
            return None
        session.last_used = now
        return session

    def close(self, token: str | None) -> bool:
        return self._by_token.pop(token or "", None) is not None
