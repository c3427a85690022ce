"""KerongBus: the one owner of a Kerong KR-CU RS-485 line (pyserial); one request at a time.

RS-485 is half duplex, so every request goes through one asyncio.Lock, and
the blocking pyserial calls run in a worker thread (the event loop never
waits on the wire). A status request with no valid reply is sent again up
to `retries` more times; an unlock is sent once and never repeated (the
board gives no reply the sources agree on, and a second frame would restart
the pulse): the bank proves the board heard it with a status read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from firmware_bridge.bank import BoardUnavailable
from firmware_bridge.kerong import codec
from firmware_bridge.modbus.errors import BusUnavailable, check_serial_device

log = logging.getLogger(__name__)

#: The factory line setting every source gives for KR-CU boards: 19200 baud, 8N1.
DEFAULT_BAUDRATE = 19200

#: Told of every request once it is done: (bus, board, seconds, answered), as the Modbus
#: bus's RequestObserver (the metrics exporter counts both alike).
RequestObserver = Callable[[str, int, float, bool], None]


@dataclass(frozen=True)
class KerongBusSettings:
    """One KR-CU line: serial `device`, `baudrate` (8N1), reply `timeout_s`, further `retries`."""

    name: str
    device: str
    baudrate: int = DEFAULT_BAUDRATE
    timeout_s: float = 0.3
    retries: int = 2


class BoardSilent(BoardUnavailable):
    """A KR-CU board that sent no valid status reply through every attempt."""

    code = "board_not_answering"

    def __init__(self, bus: str, board: int, attempts: int, garbage: bool) -> None:
        heard = (
            "only bytes that were not a valid frame (bad checksum or framing)"
            if garbage
            else "nothing"
        )
        super().__init__(
            f"bus {bus!r}: Kerong board {board} did not answer "
            f"({attempts} attempts, heard {heard})",
            fix="check the board's address switch (it must match the board's `unit` in the "
            "config, 0..15), the A/B wiring (swap A and B if in doubt), power, and that the "
            "bus's `baudrate` is the board's (19200 from the factory)",
        )
        self.board = board


@dataclass
class KerongHealth:
    """Counters of one board, as `kiosk doctor` and the maintenance screen show them."""

    requests: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    retries: int = 0
    online: bool | None = None

    def counters(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "timeouts": self.timeouts,
            "bad_frames": self.bad_frames,
            "retries": self.retries,
        }


class KerongBus:
    """One serial port, one lock; `unlock` and `status` are the two requests a bank needs."""

    def __init__(
        self, settings: KerongBusSettings, *, observer: RequestObserver | None = None
    ) -> None:
        if not settings.device:
            raise ValueError(f"bus {settings.name!r}: a kerong-cu bus needs a serial device")
        if settings.timeout_s <= 0 or settings.retries < 0:
            raise ValueError(f"bus {settings.name!r}: timeout_s must be > 0 and retries >= 0")
        self.settings = settings
        self._observer = observer
        self._lock = asyncio.Lock()
        self._port: serial.Serial | None = None
        # The port is touched by one worker thread at a time; this guards close() against it.
        self._io = threading.Lock()
        self._health: dict[int, KerongHealth] = {}

    @property
    def name(self) -> str:
        return self.settings.name

    def health(self, board: int) -> KerongHealth:
        return self._health.setdefault(board, KerongHealth())

    async def connect(self) -> None:
        """Open the port (8N1, exclusive); a second call while open does nothing."""
        if self._port is not None:
            return
        s = self.settings
        check_serial_device(s.name, s.device)
        try:
            self._port = await asyncio.to_thread(
                serial.Serial,
                s.device,
                baudrate=s.baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, OSError) as exc:
            raise BusUnavailable(
                f"bus {s.name!r}: cannot open serial port {s.device} ({exc})",
                fix=f"check that no other program holds it (`fuser {s.device}`; "
                "ModemManager, a second kiosk daemon) and that it is a serial port",
            ) from None

    async def close(self) -> None:
        """Release the port. Safe to call twice."""
        async with self._lock:
            port, self._port = self._port, None
            if port is not None:
                with self._io:
                    port.close()

    async def unlock(self, board: int, lock: int) -> None:
        """Send one unlock frame (command 0x31); nothing is waited for or re-sent."""
        frame = codec.unlock_frame(board, lock)
        async with self._lock:
            port = self._open_port()
            self.health(board).requests += 1
            start = time.monotonic()
            await asyncio.to_thread(self._write, port, frame)
            self._observe(board, start, True)

    async def status(self, board: int) -> codec.Status:
        """Every hook and IR bit of `board` (command 0x30, reply 0x35); BoardSilent if none."""
        frame = codec.status_frame(board)
        health = self.health(board)
        attempts = 1 if health.online is False else 1 + self.settings.retries
        garbage = False
        async with self._lock:
            port = self._open_port()
            health.requests += 1
            start = time.monotonic()
            for attempt in range(attempts):
                if attempt:
                    health.retries += 1
                reply, heard = await asyncio.to_thread(self._transact, port, frame, board)
                if reply is not None:
                    if health.online is False:
                        log.warning("bus %r: Kerong board %d answers again", self.name, board)
                    health.online = True
                    self._observe(board, start, True)
                    return reply
                if heard:
                    health.bad_frames += 1
                    garbage = True
                else:
                    health.timeouts += 1
            self._observe(board, start, False)
        if health.online is not False:
            log.warning("bus %r: Kerong board %d stopped answering", self.name, board)
        health.online = False
        raise BoardSilent(self.name, board, attempts, garbage)

    async def probe(self, board: int, timeout_s: float) -> codec.Status | None:
        """One status request to `board`, waiting `timeout_s`: its Status, or None if silent.

        For a scan (`kiosk hardware scan`): asked once, never re-sent, and the
        board's health is left alone (most addresses of a line have no board).
        """
        frame = codec.status_frame(board)
        async with self._lock:
            port = self._open_port()
            reply, _ = await asyncio.to_thread(self._transact, port, frame, board, timeout_s)
        return reply

    def _observe(self, board: int, start: float, answered: bool) -> None:
        if self._observer is not None:
            self._observer(self.name, board, time.monotonic() - start, answered)

    def _open_port(self) -> serial.Serial:
        if self._port is None:
            raise BoardUnavailable(
                f"bus {self.name!r}: the serial port is not open", fix="start the lock bank first"
            )
        return self._port

    def _write(self, port: serial.Serial, frame: bytes) -> None:
        with self._io:
            try:
                port.reset_input_buffer()
                port.write(frame)
                port.flush()
            except (serial.SerialException, OSError) as exc:
                raise BusUnavailable(
                    f"bus {self.name!r}: writing to {self.settings.device} failed ({exc})",
                    fix="check the USB/RS-485 adapter and its cable",
                ) from None

    def _transact(
        self, port: serial.Serial, frame: bytes, board: int, timeout_s: float | None = None
    ) -> tuple[codec.Status | None, bool]:
        """Write `frame`, read until `board`'s status reply or the timeout; (status, heard bytes).

        Frames of other boards or commands (a late reply, another board's
        answer) are skipped; a frame with a bad checksum is never taken.
        """
        self._write(port, frame)
        parser = codec.FrameParser()
        heard = False
        deadline = time.monotonic() + (timeout_s or self.settings.timeout_s)
        with self._io:
            while (left := deadline - time.monotonic()) > 0:
                port.timeout = left
                try:
                    data = port.read(max(1, port.in_waiting))
                except (serial.SerialException, OSError) as exc:
                    raise BusUnavailable(
                        f"bus {self.name!r}: reading {self.settings.device} failed ({exc})",
                        fix="check the USB/RS-485 adapter and its cable",
                    ) from None
                heard = heard or bool(data)
                for got in parser.feed(data):
                    if got.cmd == codec.CMD_STATUS_REPLY and got.board == board:
                        return codec.decode_status(got), heard
        return None, heard and (parser.rejected > 0 or parser.pending > 0)
