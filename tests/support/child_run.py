"""What a crash-test child printed before it died: its points, pulses and door movements.

Both crash tests (the service's and the daemon's) read the same protocol:
`POINT n what`, `KILL n what`, `POINTS total`, and `PULSED|OPENED|CLOSED|SHUT label`.
"""

from __future__ import annotations

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
