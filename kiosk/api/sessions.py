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
        now = self._now()
        # Logins never used again would pile up: drop every expired one here.
        for token in [t for t, s in self._by_token.items() if now - s.last_used > self.idle_s]:
            del self._by_token[token]
        session = Session(secrets.token_urlsafe(24), technician_id, now)
        self._by_token[session.token] = session
        return session

    def live(self, token: str | None) -> Session | None:
        """The live session of `token`, or None; its idle timer is left as it is."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        if self._now() - session.last_used > self.idle_s:
            del self._by_token[token]
            return None
        return session

    def touch(self, token: str | None) -> Session | None:
        """The live session of `token` (its idle timer restarted), or None."""
        session = self.live(token)
        if session is not None:
            session.last_used = self._now()
        return session

    def __len__(self) -> int:
        return len(self._by_token)

    def close(self, token: str | None) -> bool:
        return self._by_token.pop(token or "", None) is not None

    def close_all(self, technician_id: str) -> int:
        """Close every session of one technician (removed); how many there were."""
        tokens = [t for t, s in self._by_token.items() if s.technician_id == technician_id]
        for token in tokens:
            del self._by_token[token]
        return len(tokens)
