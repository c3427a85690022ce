"""A simulated KR-CU line: Kerong boards answering over a real pseudo-terminal.

The client opens the pty's slave path as it would /dev/ttyUSB0. Each board
keeps its hooks (closed until unlocked; `shut` closes one again, as a
person pushing the door would) and its IR sensors. A board can be made
`silent` (no reply: a cut cable, a wrong address) or `corrupt` (replies with
a wrong checksum). The line check of the Modbus simulator applies: a client
at the wrong speed or not 8N1 is not answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from firmware_bridge.kerong import codec
from firmware_bridge.simboard.transports import PtyLink, SimPty


@dataclass
class SimKerongBoard:
    """One board: `closed` and `occupied` hold lock indexes; `unlocks` counts unlock frames."""

    address: int
    locks: int = 16
    closed: set[int] = field(default_factory=set)
    occupied: set[int] = field(default_factory=set)
    unlocks: list[int] = field(default_factory=list)
    silent: bool = False
    corrupt: bool = False
    #: Seconds a simulated person keeps an unlocked door open before pushing it shut (None:
    #: never; a test calls `shut`).
    auto_close_s: float | None = None

    def __post_init__(self) -> None:
        if not self.closed:
            self.closed = set(range(self.locks))

    def shut(self, lock: int) -> None:
        self.closed.add(lock)

    def reply(self, frame: codec.Frame) -> bytes:
        """What the board sends back for a frame addressed to it (b"" for nothing)."""
        if frame.cmd == codec.CMD_UNLOCK:
            if frame.lock < self.locks:
                self.unlocks.append(frame.lock)
                self.closed.discard(frame.lock)
                if self.auto_close_s is not None:
                    loop = asyncio.get_running_loop()
                    loop.call_later(self.auto_close_s, self.shut, frame.lock)
            return b""
        if frame.cmd != codec.CMD_STATUS or self.silent:
            return b""
        hooks = sum(1 << i for i in self.closed)
        ir = sum(1 << i for i in self.occupied)
        out = codec.status_reply(self.address, hooks, ir)
        if self.corrupt:
            out = out[:-1] + bytes([out[-1] ^ 0xFF])
        return out


class SimKerongLine:
    """Every simulated board on one line, by address; `feed` takes what the host wrote."""

    def __init__(self, boards: list[SimKerongBoard]) -> None:
        self.boards = {b.address: b for b in boards}
        self.parser = codec.FrameParser()
        self.event = asyncio.Event()

    def feed(self, data: bytes) -> bytes:
        out = b""
        for frame in self.parser.feed(data):
            board = self.boards.get(frame.board)
            if board is not None:
                out += board.reply(frame)
        self.event.set()
        return out


async def serve_kerong_pty(
    line: SimKerongLine, *, baudrate: int = 19200, link: str | None = None
) -> PtyLink:
    """Serve `line` on a new pty; return the path a client opens and `stop` (safe twice)."""
    pty = SimPty(baudrate, link)

    def feed(data: bytes) -> None:
        if not pty.line_matches():
            line.event.set()
            return  # garbage at the wrong speed or format: a real board hears no frame
        out = line.feed(data)
        if out:
            pty.write(out)

    return pty.serve(feed)
