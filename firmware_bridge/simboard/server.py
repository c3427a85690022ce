"""Serving loops for a SimBus: Modbus RTU over any byte stream, Modbus TCP over one connection.

Framing and CRC are pymodbus's own (FramerRTU / FramerSocket with a server-side
DecodePDU); nothing here computes a checksum by hand. We do not use pymodbus's
server because it answers a request for an unknown unit with an exception
reply, while a real RS-485 board stays silent.

RTU frames end at a silence of 3.5 characters (1.75 ms above 19200 baud, as
the Modbus serial line spec fixes it). A chunk that holds more than one whole
frame back to back (a client that broadcasts and polls with no turnaround
gap) is split on pymodbus's own frame-size rules, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from pymodbus.exceptions import NotImplementedException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU

from firmware_bridge.simboard.bus import SimBus

log = logging.getLogger(__name__)

#: Bits on the wire per character at 8N1 (start + 8 data + stop).
BITS_PER_CHAR = 10


def silence_s(baudrate: int) -> float:
    """The 3.5-character gap that ends an RTU frame (the spec counts 11-bit characters)."""
    return 0.00175 if baudrate > 19200 else 3.5 * 11 / baudrate


def _crc_ok(frame: bytes) -> bool:
    if len(frame) < FramerRTU.MIN_SIZE:
        return False
    return FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))


class RtuServer:
    """Answers the requests in an RTU byte stream for the boards of `bus`.

    Feed received bytes to `feed`; replies go out through `write`. Frames are
    served one at a time, in order, by one worker task (a board is one CPU):
    a slow reply holds back the next frame, as on a real line. With
    `wire_timing`, each reply waits as long as request and reply would take on
    the wire at `baudrate` (a pty itself has no speed). `line_ok`, when given,
    says whether the client's line settings match the bus; if not, every frame
    reads as garbage, as on a real line at the wrong baud rate. `sleep` is what
    holds a reply back (asyncio.sleep; a test passes its own to see the hold).
    """

    def __init__(
        self,
        bus: SimBus,
        write: Callable[[bytes], None],
        *,
        baudrate: int = 115200,
        wire_timing: bool = True,
        line_ok: Callable[[], bool] | None = None,
        precise: bool = False,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.bus = bus
        self._sleep = sleep
        self.precise = precise
        self.baudrate = baudrate
        self.framer = FramerRTU(DecodePDU(is_server=True))
        self._write = write
        self._wire_timing = wire_timing
        self._line_ok = line_ok
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._frame_end = 0.0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the worker on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._work(), name="simboard-rtu")

    async def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
            self._timer = None
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def feed(self, data: bytes) -> None:
        """Bytes off the line; the frame ends when the line has been quiet for 3.5 characters."""
        self._buffer += data
        if self._timer:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        silence = silence_s(self.baudrate)
        if self.precise:
            self._frame_end = loop.time() + silence
            silence = max(0.0, silence - TIMER_SLACK_S)
        self._timer = loop.call_later(silence, self._end_of_frame)

    def _end_of_frame(self) -> None:
        self._timer = None
        if self.precise:
            _spin_until(self._frame_end)
        if self._buffer:
            self._queue.put_nowait(bytes(self._buffer))
            self._buffer.clear()

    async def _work(self) -> None:
        while True:
            chunk = await self._queue.get()
            try:
                await self.serve_chunk(chunk)
            except Exception:  # one bad frame must not stop the board; say so loudly
                log.exception("simulated board failed on frame %s", chunk.hex(" "))

    async def serve_chunk(self, chunk: bytes) -> None:
        """Serve everything that arrived between two silences."""
        if self._line_ok is not None and not self._line_ok():
            self.bus.bad_frame(chunk)
            return
        for frame in self.split(chunk):
            await self._serve_frame(frame)

    def split(self, chunk: bytes) -> list[bytes]:
        """Cut off whole, checked frames from the front; the rest is one (maybe bad) frame."""
        frames: list[bytes] = []
        while True:
            size = self._frame_size(chunk)
            if 0 < size < len(chunk) and _crc_ok(chunk[:size]):
                frames.append(chunk[:size])
                chunk = chunk[size:]
            else:
                frames.append(chunk)
                return frames

    def _frame_size(self, data: bytes) -> int:
        if len(data) < FramerRTU.MIN_SIZE:
            return 0
        pdu_class = self.framer.decoder.lookupPduClass(data)
        if pdu_class is None:
            return 0
        try:
            return pdu_class.calculateRtuFrameSize(data)
        except NotImplementedException:
            return 0

    def decode(self, frame: bytes) -> tuple[int, bytes] | None:
        """(unit, PDU bytes) of a checked frame, or None if it fails its CRC or is too short."""
        _, unit, _, pdu = self.framer.decode(frame)
        if pdu:
            return unit, pdu
        if _crc_ok(frame):  # a sound frame with a function code pymodbus does not know
            return frame[0], frame[1:-2]
        return None

    async def _serve_frame(self, frame: bytes) -> None:
        decoded = self.decode(frame)
        if decoded is None:
            self.bus.bad_frame(frame)
            return
        answer = self.bus.answer(frame, *decoded)
        if answer.reply is None:
            return
        out = self.framer.buildFrame(answer.reply)
        if answer.corrupt:  # flip the last CRC byte: the client's check must fail
            out = out[:-1] + bytes([out[-1] ^ 0xFF])
        delay = answer.delay_s
        if self._wire_timing:
            delay += (len(frame) + len(out)) * BITS_PER_CHAR / self.baudrate
        if delay > 0 and self.precise:
            deadline = asyncio.get_running_loop().time() + delay
            await self._sleep(max(0.0, delay - TIMER_SLACK_S))
            _spin_until(deadline)
        elif delay > 0:
            await self._sleep(delay)
        self._write(out)


#: How late an asyncio timer may fire on Linux: epoll waits in whole milliseconds.
TIMER_SLACK_S = 0.0011


def _spin_until(deadline: float) -> None:
    """Busy-wait to `deadline` (loop time): a board's timing is exact, epoll's is not.

    Only with `precise`, for benchmarks: it holds the event loop up to
    TIMER_SLACK_S per timer, while the client waits on the wire anyway.
    """
    while time.monotonic() < deadline:
        pass


async def serve_tcp_connection(
    bus: SimBus, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve one Modbus TCP connection (MBAP header, unit id picks the board) until it ends.

    Requests are answered in order; the reply carries the request's transaction id.
    A connection that sends more than one ADU's worth of bytes that never decode
    (not Modbus TCP) is closed.
    """
    framer = FramerSocket(DecodePDU(is_server=True))
    buffer = b""
    try:
        while data := await reader.read(4096):
            buffer += data
            while buffer:
                used, unit, tid, pdu = framer.decode(buffer)
                if not used:
                    if len(buffer) > framer.MAX_SIZE:
                        bus.bad_frame(buffer)
                        return
                    break
                raw, buffer = buffer[:used], buffer[used:]
                if not pdu:
                    bus.bad_frame(raw)
                    continue
                answer = bus.answer(raw, unit, pdu)
                if answer.reply is None:
                    continue
                answer.reply.transaction_id = tid
                out = framer.buildFrame(answer.reply)
                if answer.corrupt:  # a non-zero protocol id: the client's framer rejects it
                    out = out[:2] + bytes([out[2] ^ 0xFF]) + out[3:]
                if answer.delay_s > 0:
                    await asyncio.sleep(answer.delay_s)
                writer.write(out)
                await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
