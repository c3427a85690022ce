"""A simulated RS-485 multi-drop bus: several boards, who answers what, and scripted line faults.

Pure: the transports (server.py) cut the byte stream into frames and write the
replies; this module only decides. The rules are a real bus's: a frame for a
unit nobody has gets no reply (a client sees a timeout, never an exception
reply), a broadcast (unit 0) write is applied by every board and answered by
none, a frame that fails its check is ignored. The faults a test can script:
`silent` (bus unplugged), `slow_s` (reply delay), `drop_rate` and `drop_next`
(a lost request or a lost reply) and `corrupt_next` (a reply that fails its
check).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymodbus.pdu import ModbusPDU

from firmware_bridge.simboard.board import SimBoard
from firmware_bridge.simboard.physics import Pulse

BROADCAST = 0


@dataclass(frozen=True)
class FrameRecord:
    """One frame the bus received and what became of it.

    `unit` and `function_code` are None for a frame that failed its check.
    `outcome`: reply, exception, bad_frame, broadcast, not_mine, unplugged,
    silent, dropped, reply_lost or corrupted.
    """

    t: float
    raw: bytes
    unit: int | None
    function_code: int | None
    outcome: str


@dataclass(frozen=True)
class Answer:
    """What the transport must do: send `reply` (if any) after `delay_s`, corrupted or not."""

    reply: ModbusPDU | None
    delay_s: float = 0.0
    corrupt: bool = False


_NO_ANSWER = Answer(None)


class SimBus:
    """Boards sharing one line, plus the line's faults and a record of every frame."""

    def __init__(
        self,
        boards: Iterable[SimBoard] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        record_limit: int = 10_000,
    ) -> None:
        self.boards: dict[int, SimBoard] = {}
        self.clock = clock
        self.rng = rng or random.Random()
        #: The whole bus is unplugged: nothing is applied, nothing answers.
        self.silent = False
        #: Seconds each reply is held back (a slow board or a slow gateway).
        self.slow_s = 0.0
        #: Probability that a request is lost on the wire (never reaches a board).
        self.drop_rate = 0.0
        self.frames: deque[FrameRecord] = deque(maxlen=record_limit)
        #: Called with every FrameRecord as it is made (the CLI's --verbose prints them).
        self.on_frame: Callable[[FrameRecord], None] | None = None
        self._drop: deque[bool] = deque()  # one entry per scripted drop: applied or not
        self._corrupt = 0
        for board in boards:
            self.add(board)

    @classmethod
    def of(
        cls,
        units: int = 1,
        channels: int = 16,
        *,
        pulse_ms_default: int = 500,
        open_delay_s: float = 0.05,
        auto_close_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        map_version: int = 1,
        presence: bool = False,
    ) -> SimBus:
        """A bus with boards at units 1..`units`, all alike, all on one clock.

        `map_version` 2 with `presence`: a presence sensor per channel (register map v2).
        """
        bus = cls(clock=clock, rng=rng)
        for unit in range(1, units + 1):
            bus.add(
                SimBoard(
                    unit,
                    channels,
                    pulse_ms_default,
                    open_delay_s=open_delay_s,
                    auto_close_s=auto_close_s,
                    clock=clock,
                    map_version=map_version,
                    presence=presence,
                )
            )
        return bus

    def add(self, board: SimBoard) -> SimBoard:
        if board.unit in self.boards:
            raise ValueError(f"unit {board.unit} is already on this bus")
        self.boards[board.unit] = board
        return board

    def __getitem__(self, unit: int) -> SimBoard:
        return self.boards[unit]

    @property
    def pulses(self) -> list[Pulse]:
        """Every pulse of every board, in time order."""
        return sorted((p for b in self.boards.values() for p in b.pulses), key=lambda p: p.t)

    # -- scripted faults ---------------------------------------------------------------

    def drop_next(self, n: int = 1, *, applied: bool = False) -> None:
        """Lose the next `n` addressed requests: on the way in (default, the board never
        sees them) or, with `applied=True`, on the way out (the board acts, its reply is lost).
        """
        self._drop.extend([applied] * n)

    def corrupt_next(self, n: int = 1) -> None:
        """Damage the next `n` replies so that they fail their check (the request is applied)."""
        self._corrupt += n

    def clear_faults(self) -> None:
        self.silent = False
        self.slow_s = 0.0
        self.drop_rate = 0.0
        self._drop.clear()
        self._corrupt = 0
        for board in self.boards.values():
            board.silent = False
            board.inputs_failed = False

    # -- the line ----------------------------------------------------------------------

    def bad_frame(self, raw: bytes) -> None:
        """Record a frame that failed its check (it is ignored, as on a real bus)."""
        self._record(raw, None, None, "silent" if self.silent else "bad_frame")

    def answer(self, raw: bytes, unit: int, pdu: bytes) -> Answer:
        """Decide what a checked frame for `unit` carrying `pdu` (function code + data) gets."""
        code = pdu[0] if pdu else None
        if self.silent:
            return self._record(raw, unit, code, "silent")
        if unit == BROADCAST:
            for board in self.boards.values():
                if not board.silent:
                    board.broadcast(pdu)
            return self._record(raw, unit, code, "broadcast")
        board = self.boards.get(unit)
        if board is None:
            return self._record(raw, unit, code, "not_mine")
        if board.silent:
            return self._record(raw, unit, code, "unplugged")
        lost_reply = False
        if self._drop:
            lost_reply = self._drop.popleft()
            if not lost_reply:
                return self._record(raw, unit, code, "dropped")
        elif self.drop_rate and self.rng.random() < self.drop_rate:
            return self._record(raw, unit, code, "dropped")
        reply = board.handle(pdu)
        if lost_reply:
            return self._record(raw, unit, code, "reply_lost")
        corrupt = self._corrupt > 0
        if corrupt:
            self._corrupt -= 1
            outcome = "corrupted"
        else:
            outcome = "exception" if reply.isError() else "reply"
        self._record(raw, unit, code, outcome)
        return Answer(reply, self.slow_s, corrupt)

    def _record(self, raw: bytes, unit: int | None, code: int | None, outcome: str) -> Answer:
        record = FrameRecord(self.clock(), bytes(raw), unit, code, outcome)
        self.frames.append(record)
        if self.on_frame is not None:
            self.on_frame(record)
        return _NO_ANSWER
