"""ModbusBus: the one owner of a Modbus RTU or TCP bus; every request goes through its lock.

One object per bus holds the pymodbus async client. It serialises requests
under one asyncio.Lock (RS-485 is half duplex: two requests in flight would
collide on the wire), keeps the RTU inter-frame gap, retries a request that
got no valid answer, and keeps health counters per board (unit). A board
going offline is logged once, and its return once.

pymodbus is told to make exactly one attempt per call (`retries=0`): the
retries are made here, so that each attempt is counted (a timeout with no
byte received is a `timeout`, one with bytes but no valid frame is a
`bad_frame`) and the inter-frame gap is kept between attempts too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from firmware_bridge.modbus.errors import (
    BoardNotAnswering,
    BoardRefused,
    BusUnavailable,
    check_serial_device,
)
from firmware_bridge.modbus.logfilter import install_pymodbus_log_filter
from firmware_bridge.modbus.pdu import RawWriteSingleCoil
from firmware_bridge.modbus.profiles import (
    FC_READ_COILS,
    FC_READ_DISCRETE_INPUTS,
    FC_READ_HOLDING_REGISTERS,
    ReadBits,
    ReadRegisters,
    Request,
    WriteCoil,
    WriteRegister,
)

log = logging.getLogger(__name__)
install_pymodbus_log_filter()

#: Bits per character in the Modbus spec's timing rules (start, 8 data, parity or 2nd stop, stop).
BITS_PER_CHAR = 11
#: Above this rate the spec fixes the inter-frame gap instead of scaling it (baud).
FIXED_GAP_ABOVE_BAUD = 19200
FIXED_GAP_S = 0.00175


#: Told of every request once it is done: (bus, unit, seconds, answered). Seconds are
#: from taking the bus's lock to the last attempt's end; answered is False when it raised.
RequestObserver = Callable[[str, int, float, bool], None]


def frame_gap_s(baudrate: int) -> float:
    """The RTU inter-frame gap: 3.5 character times, or 1.75 ms above 19200 baud.

    "MODBUS over serial line" v1.02, 2.5.1.1: t3.5 at 9600 baud is
    3.5 x 11 / 9600 = 4.01 ms; above 19200 baud a fixed 1.75 ms is used.
    """
    if baudrate > FIXED_GAP_ABOVE_BAUD:
        return FIXED_GAP_S
    return 3.5 * BITS_PER_CHAR / baudrate


@dataclass(frozen=True)
class BusSettings:
    """How to reach one bus. `rtu`: `device` and `baudrate` (8N1); `tcp`: `host` and `port`.

    timeout_s: wait for one reply (s). retries: further attempts after the first.
    """

    name: str
    kind: Literal["rtu", "tcp"]
    device: str = ""
    baudrate: int = 115200
    host: str = ""
    port: int = 502
    timeout_s: float = 0.3
    retries: int = 2

    @property
    def gap_s(self) -> float:
        """Silence kept between frames; none on TCP (the gateway keeps its own serial timing)."""
        return frame_gap_s(self.baudrate) if self.kind == "rtu" else 0.0

    @property
    def where(self) -> str:
        return self.device if self.kind == "rtu" else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Reply:
    """A checked reply: read bits, read registers, or nothing (a write's echo matched)."""

    bits: tuple[bool, ...] = ()
    registers: tuple[int, ...] = ()


@dataclass
class BoardHealth:
    """Counters of one board; `online` is None until the board first answers or fails."""

    requests: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    errors: int = 0
    retries: int = 0
    online: bool | None = None

    def counters(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "timeouts": self.timeouts,
            "bad_frames": self.bad_frames,
            "errors": self.errors,
            "retries": self.retries,
        }


class ModbusBus:
    """One bus, one client, one lock. Requests are plain data from `profiles`."""

    def __init__(
        self,
        settings: BusSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: RequestObserver | None = None,
    ) -> None:
        """Opens nothing until `connect`. ValueError on settings that cannot work."""
        if settings.kind not in ("rtu", "tcp"):
            raise ValueError(f"bus {settings.name!r}: kind must be 'rtu' or 'tcp'")
        if settings.kind == "rtu" and not settings.device:
            raise ValueError(f"bus {settings.name!r}: a modbus-rtu bus needs a serial device")
        if settings.kind == "tcp" and not settings.host:
            raise ValueError(f"bus {settings.name!r}: a modbus-tcp bus needs a host")
        if settings.timeout_s <= 0 or settings.retries < 0:
            raise ValueError(f"bus {settings.name!r}: timeout_s must be > 0 and retries >= 0")
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._observer = observer
        self._lock = asyncio.Lock()
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None
        self._health: dict[int, BoardHealth] = {}
        self._last_io = float("-inf")
        self._rx_seen = False

    @property
    def name(self) -> str:
        return self.settings.name

    def health(self, unit: int) -> BoardHealth:
        return self._health.setdefault(unit, BoardHealth())

    async def connect(self) -> None:
        """Open the port or TCP connection; a second call while connected does nothing."""
        if self._client is not None and self._client.connected:
            return
        s = self.settings
        client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if s.kind == "rtu":
            check_serial_device(s.name, s.device)
            client = AsyncModbusSerialClient(
                s.device,
                framer=FramerType.RTU,
                baudrate=s.baudrate,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=s.timeout_s,
                retries=0,
                reconnect_delay=0.1,
                reconnect_delay_max=5.0,
                trace_packet=self._trace_packet,
                name=s.name,
            )
        else:
            client = AsyncModbusTcpClient(
                s.host,
                port=s.port,
                framer=FramerType.SOCKET,
                timeout=s.timeout_s,
                retries=0,
                reconnect_delay=0.1,
                reconnect_delay_max=5.0,
                trace_packet=self._trace_packet,
                name=s.name,
            )
        client.register(RawWriteSingleCoil)
        # One silent unit must not make pymodbus drop a TCP link the other units share.
        client.set_max_no_responses(2**31)
        if not await client.connect():
            client.close()
            if s.kind == "rtu":
                raise BusUnavailable(
                    f"bus {s.name!r}: cannot open serial port {s.device}",
                    fix=f"check that no other program holds it (`fuser {s.device}`; "
                    "ModemManager, a second kiosk daemon) and that it is a serial port",
                )
            raise BusUnavailable(
                f"bus {s.name!r}: cannot connect to Modbus TCP {s.host}:{s.port}",
                fix="check the gateway's address, port, power and network",
            )
        self._client = client

    async def close(self) -> None:
        """Release the port or connection. Safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def execute(
        self, unit: int, request: Request, what: str = "", *, landed: ReadBits | None = None
    ) -> Reply:
        """Send one request to `unit` and return its checked reply.

        A request with no valid answer is tried again, up to `retries` more
        times (not at all while the board is known to be offline).

        `landed`, for a write that must not be repeated while it acts (an
        unlock pulse), is a one-bit read of the output it switches on. It is
        read before each re-send: if the output is on, the first write did
        reach the board (only its reply was lost), so it counts as done and is
        NOT sent again. A pulse is never restarted mid-way.

        Raises BoardNotAnswering after every attempt went unanswered,
        BoardRefused on a Modbus exception reply, BusUnavailable if the port
        or connection is gone.
        """
        what = what or type(request).__name__
        async with self._lock:
            start, answered = self._clock(), False
            try:
                reply = await self._execute(unit, request, what, landed)
                answered = True
                return reply
            finally:
                if self._observer is not None:
                    self._observer(self.name, unit, self._clock() - start, answered)

    async def probe(self, unit: int, request: ReadRegisters, timeout_s: float) -> Reply | None:
        """One read for a scan: one attempt of at most `timeout_s` (or the bus's own timeout,
        if shorter), no retry; the checked reply, or None if nothing valid came.

        Unlike `execute` it leaves the unit's health alone and logs nothing: most units
        of a scan are silent, and a silent one is an answer, not an outage. A board's
        Modbus exception reply raises BoardRefused (it is there, but not this map).
        """
        async with self._lock:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._keep_gap()
                    pdu = await self._send(unit, request)
            except ConnectionException as exc:
                raise BusUnavailable(
                    f"bus {self.name!r}: {self.settings.where} is not connected (scan)",
                    fix="check the adapter or gateway",
                ) from exc
            except (TimeoutError, ModbusException):
                return None
            finally:
                self._last_io = self._clock()
        if pdu.isError():
            raise BoardRefused(self.name, unit, "identify", pdu.exception_code)
        return _check_reply(request, pdu)

    async def _execute(
        self, unit: int, request: Request, what: str, landed: ReadBits | None
    ) -> Reply:
        """`execute`'s attempts, under the bus's lock."""
        health = self.health(unit)
        health.requests += 1
        # A board already known offline gets one probe, not the full retries: a dead
        # board must not slow every poll of the boards sharing its line.
        attempts = 1 if health.online is False else 1 + self.settings.retries
        for attempt in range(attempts):
            if attempt and landed is not None:
                check = await self._attempt(unit, landed, what)
                if check is None:
                    continue  # still no answer: sending the write again proves nothing
                if check.bits[:1] == (True,):
                    log.debug("bus %r: board %d: %s had landed; not re-sent", self.name, unit, what)
                    return self._done(unit, attempt)
            reply = await self._attempt(unit, request, what)
            if reply is not None:
                return self._done(unit, attempt, reply)
        error = BoardNotAnswering(self.name, unit, attempts, tcp=self.settings.kind == "tcp")
        self._went_silent(unit, f"no answer in {attempts} attempts ({error.fix})")
        raise error

    async def _attempt(self, unit: int, request: Request, what: str) -> Reply | None:
        """One send, one wait: the checked reply, or None (counted) if none came valid."""
        health = self.health(unit)
        await self._keep_gap()
        self._rx_seen = False
        try:
            pdu = await self._send(unit, request)
        except ConnectionException as exc:
            health.errors += 1
            self._went_silent(unit, f"bus connection lost: {exc}")
            raise BusUnavailable(
                f"bus {self.name!r}: {self.settings.where} is not connected "
                f"({what} to board {unit})",
                fix="check the adapter or gateway; the bus reconnects by itself",
            ) from exc
        except ModbusException:
            if self._rx_seen:
                health.bad_frames += 1
            else:
                health.timeouts += 1
            log.debug("bus %r: board %d: no valid reply to %s", self.name, unit, what)
            return None
        finally:
            self._last_io = self._clock()
        if pdu.isError() and pdu.function_code & 0x7F != request.function:
            # An exception reply to another request (a late one, or noise that passed the
            # CRC) says nothing about this one: a bad frame, never this request refused.
            health.bad_frames += 1
            log.debug("bus %r: board %d: exception reply %s to %s", self.name, unit, pdu, what)
            return None
        if pdu.isError():
            health.errors += 1
            self._answered(unit)
            raise BoardRefused(self.name, unit, what, pdu.exception_code)
        reply = _check_reply(request, pdu)
        if reply is None:
            health.bad_frames += 1
            log.debug("bus %r: board %d: reply does not match %s: %s", self.name, unit, what, pdu)
        return reply

    def _done(self, unit: int, attempt: int, reply: Reply | None = None) -> Reply:
        self.health(unit).retries += attempt
        self._answered(unit)
        return reply or Reply()

    async def _send(self, unit: int, request: Request) -> ModbusPDU:
        client = self._client
        if client is None:
            raise ConnectionException(f"bus {self.name!r} is not connected")
        if isinstance(request, ReadBits):
            if request.function == FC_READ_COILS:
                return await client.read_coils(request.address, count=request.count, device_id=unit)
            if request.function == FC_READ_DISCRETE_INPUTS:
                return await client.read_discrete_inputs(
                    request.address, count=request.count, device_id=unit
                )
        elif isinstance(request, ReadRegisters):
            if request.function == FC_READ_HOLDING_REGISTERS:
                return await client.read_holding_registers(
                    request.address, count=request.count, device_id=unit
                )
            return await client.read_input_registers(
                request.address, count=request.count, device_id=unit
            )
        elif isinstance(request, WriteCoil):
            pdu = RawWriteSingleCoil(request.address, request.value, dev_id=unit)
            return await client.execute(False, pdu)
        elif isinstance(request, WriteRegister):
            return await client.write_register(request.address, request.value, device_id=unit)
        raise ValueError(f"unsupported request {request!r}")

    async def _keep_gap(self) -> None:
        wait = self._last_io + self.settings.gap_s - self._clock()
        if wait > 0:
            await self._sleep(wait)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending and data:
            self._rx_seen = True
        return data

    def _answered(self, unit: int) -> None:
        health = self.health(unit)
        if health.online is False:
            log.info("bus %r: board %d is back online", self.name, unit)
        health.online = True

    def _went_silent(self, unit: int, reason: str) -> None:
        health = self.health(unit)
        if health.online is not False:
            log.warning("bus %r: board %d is offline: %s", self.name, unit, reason)
        health.online = False


def _check_reply(request: Request, pdu: ModbusPDU) -> Reply | None:
    """The reply as plain data, or None if it does not answer `request` (a stray frame)."""
    if pdu.function_code != request.function:
        return None
    if isinstance(request, ReadBits):
        bits = tuple(bool(b) for b in pdu.bits)
        return Reply(bits=bits) if len(bits) >= request.count else None
    if isinstance(request, ReadRegisters):
        regs = tuple(int(r) for r in pdu.registers)
        return Reply(registers=regs) if len(regs) == request.count else None
    if isinstance(request, WriteCoil):
        echo = (pdu.address, getattr(pdu, "value", None))
        return Reply() if echo == (request.address, request.value) else None
    registers = list(pdu.registers)
    echo_ok = pdu.address == request.address and registers[:1] == [request.value]
    return Reply() if echo_ok else None
