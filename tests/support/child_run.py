"""The crash-test protocol: kill points in the child, and what the parent reads back.

Both crash tests (the service's and the daemon's) read the same protocol:
`POINT n what`, `KILL n what`, `POINTS total`, and `PULSED|OPENED|CLOSED|SHUT label`.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ChildRun:
    """One child's exit status and output lines."""

    kill_at: int
    returncode: int | None
    lines: list[str]
    stderr: str

    def _labels(self, word: str) -> set[str]:
        return {line.split()[1] for line in self.lines if line.split(" ", 1)[0] == word}

    @property
    def pulsed(self) -> set[str]:
        return self._labels("PULSED")

    @property
    def opened(self) -> set[str]:
        return self._labels("OPENED")

    @property
    def closed(self) -> set[str]:
        return self._labels("CLOSED")

    @property
    def shut(self) -> set[str]:
        return self._labels("SHUT")

    @property
    def total(self) -> int | None:
        done = [line for line in self.lines if line.startswith("POINTS ")]
        return int(done[0].split()[1]) if done else None

    def points(self) -> dict[int, str]:
        found = {}
        for line in self.lines:
            word, _, rest = line.partition(" ")
            if word == "POINT":
                n, _, what = rest.partition(" ")
                found[int(n)] = what
        return found

    @property
    def killed(self) -> str | None:
        """The point the child said it was dying at."""
        kills = [line.split(" ", 2) for line in self.lines if line.startswith("KILL ")]
        return kills[0][2] if kills and int(kills[0][1]) == self.kill_at else None

    def tail(self) -> str:
        return "\n".join([*self.lines[-3:], self.stderr.strip()[-1500:]])


def say(*words: object) -> None:
    print(*words, flush=True)


class KillCounter:
    """Counts points; at point `kill_at` the process dies by SIGKILL (0: never)."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.count = 0
        self.armed = False

    def __call__(self, what: str) -> None:
        if not self.armed:
            return
        self.count += 1
        if self.count == self.kill_at:
            say("KILL", self.count, what)
            os.kill(os.getpid(), signal.SIGKILL)
        say("POINT", self.count, what)


@dataclass(frozen=True)
class Commits:
    """The COMMIT points (of the counting run) of the transactions the exact checks look for."""

    op_written: int  # the door-op journal row (delivery: with the RESERVED locker)
    op_open: int  # the journal says OPEN (door seen open)
    op_done: int  # the door closed: DELIVERED, PICKED_UP or RETURNED

    @classmethod
    def find(cls, points: dict[int, str]) -> Commits:
        def commit_after(marker: str) -> int:
            start = next(n for n, what in sorted(points.items()) if marker in what)
            return next(
                n for n, what in sorted(points.items()) if n > start and what == "sql COMMIT"
            )

        return cls(
            commit_after("INSERT INTO door_ops"),
            commit_after("UPDATE door_ops SET state = 'OPEN'"),
            commit_after("UPDATE door_ops SET state = 'DONE'"),
        )
