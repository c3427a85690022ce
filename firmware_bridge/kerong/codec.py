"""The Kerong KR-CU frame: STX, address, command, [data], ETX, sum; built and parsed here.

No library speaks this protocol, so this small codec does (docs/hardware.md,
"Kerong KR-CU boards", lists the public sources and where they disagree).

    02 ADDR CMD [DATA...] 03 SUM      SUM = (sum of every byte before it) & 0xFF

ADDR is the board address (0..15, its DIP switch) in the high nibble and,
for a command on one lock, the lock index (0..15) in the low nibble. The
frame has no length field: its length follows from the command byte.
"""

from __future__ import annotations

from dataclasses import dataclass

STX = 0x02
ETX = 0x03

#: Host -> board: the status of every lock hook and IR sensor of one board (ADDR = board << 4).
CMD_STATUS = 0x30
#: Host -> board: energise one lock for the board's own unlock time (ADDR = board << 4 | lock).
CMD_UNLOCK = 0x31
#: Board -> host: the reply to CMD_STATUS: hooks 1-8, hooks 9-16, IR 1-8, IR 9-16.
CMD_STATUS_REPLY = 0x35

#: Frame length by command byte (there is no length field on the wire).
FRAME_LENGTH = {CMD_STATUS: 5, CMD_UNLOCK: 5, CMD_STATUS_REPLY: 9}

MAX_BOARD = 15
MAX_LOCKS = 16


def checksum(data: bytes) -> int:
    """The low byte of the sum of `data` (every byte from STX through ETX)."""
    return sum(data) & 0xFF


def address(board: int, lock: int = 0) -> int:
    """The ADDR byte: board (0..15) in the high nibble, lock index (0..15) in the low one."""
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"Kerong board address must be 0..{MAX_BOARD}, got {board}")
    if not 0 <= lock < MAX_LOCKS:
        raise ValueError(f"Kerong lock index must be 0..{MAX_LOCKS - 1}, got {lock}")
    return board << 4 | lock


def encode(addr: int, cmd: int, data: bytes = b"") -> bytes:
    """One frame: STX, addr, cmd, data, ETX, checksum."""
    body = bytes([STX, addr & 0xFF, cmd & 0xFF]) + bytes(data) + bytes([ETX])
    return body + bytes([checksum(body)])


def unlock_frame(board: int, lock: int) -> bytes:
    return encode(address(board, lock), CMD_UNLOCK)


def status_frame(board: int) -> bytes:
    return encode(address(board), CMD_STATUS)


@dataclass(frozen=True)
class Frame:
    """One checked frame: its address byte, command byte and data bytes."""

    addr: int
    cmd: int
    data: bytes = b""

    @property
    def board(self) -> int:
        return self.addr >> 4

    @property
    def lock(self) -> int:
        return self.addr & 0x0F


@dataclass(frozen=True)
class Status:
    """A board's status reply: bit i of `hooks` = lock i+1's hook, of `infrared` = its IR sensor.

    hooks bit 1 = lock closed (the hook is latched); infrared bit 1 = something
    in the compartment. (One source reads the hook bit the other way round:
    docs/hardware.md.)
    """

    board: int
    hooks: int
    infrared: int

    def closed(self, lock: int) -> bool:
        return bool(self.hooks >> lock & 1)

    def occupied(self, lock: int) -> bool:
        return bool(self.infrared >> lock & 1)


def status_reply(board: int, hooks: int, infrared: int) -> bytes:
    """The board's 9-byte reply to CMD_STATUS (what the simulator sends)."""
    data = bytes([hooks & 0xFF, hooks >> 8 & 0xFF, infrared & 0xFF, infrared >> 8 & 0xFF])
    return encode(address(board), CMD_STATUS_REPLY, data)


def decode_status(frame: Frame) -> Status:
    """The Status carried by a CMD_STATUS_REPLY frame; ValueError for any other frame."""
    if frame.cmd != CMD_STATUS_REPLY or len(frame.data) != 4:
        raise ValueError(f"not a status reply: command 0x{frame.cmd:02X}, {len(frame.data)} bytes")
    d = frame.data
    return Status(frame.board, d[0] | d[1] << 8, d[2] | d[3] << 8)


class FrameParser:
    """Cuts checked frames out of a byte stream; counts what it had to throw away.

    A byte that cannot start a known frame, a frame whose ETX is missing and
    a frame whose checksum is wrong are dropped (`rejected` counts them) and
    the search for STX goes on from the next byte.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected = 0
        self.bad_checksums = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            start = self._buf.find(STX)
            if start < 0:
                self.rejected += len(self._buf) > 0
                self._buf.clear()
                return frames
            if start:
                self.rejected += 1
                del self._buf[:start]
            if len(self._buf) < 3:
                return frames
            length = FRAME_LENGTH.get(self._buf[2])
            if length is None:
                self.rejected += 1
                del self._buf[:1]
                continue
            if len(self._buf) < length:
                return frames
            raw = bytes(self._buf[:length])
            if raw[-2] != ETX or checksum(raw[:-1]) != raw[-1]:
                self.rejected += 1
                self.bad_checksums += raw[-2] == ETX
                del self._buf[:1]
                continue
            del self._buf[:length]
            frames.append(Frame(raw[1], raw[2], raw[3:-2]))

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame not yet complete."""
        return len(self._buf)
