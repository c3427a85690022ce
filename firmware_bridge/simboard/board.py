"""One simulated lock board: Modbus register map v1 or v2 over door physics, PDU in, reply out.

Pure (no I/O): `handle` takes the PDU bytes of one request (function code +
data, as pymodbus's framers hand them over) and returns the reply PDU built
from pymodbus's own PDU classes; the transport frames it. Register map v1
(docs/contracts/register-map.md): coils 0..N-1 = locks (write 1 = energise for the pulse
time, the board clears it), discrete inputs 0..N-1 = door sensors (1 = open),
holding register 0 = pulse ms, input registers 0 = map version, 1 = N.
Map v2 adds input register 2 = P, the presence sensors (0 or N), and, when P
is N, discrete inputs 1000..1000+N-1 = presence (1 = something inside).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import pymodbus.pdu.bit_message as pdu_bit
import pymodbus.pdu.register_message as pdu_reg
from pymodbus.constants import ExcCodes
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

from firmware_bridge.simboard.physics import Door, DoorMode, Pulse

MAP_VERSION = 1
#: Map v2: v1 plus parcel-presence sensors.
MAP_VERSION_PRESENCE = 2
#: First discrete input of the presence sensors (map v2): 1000 + ch.
PRESENCE_BASE = 1000
MAX_CHANNELS = 64
#: Accepted unlock pulse lengths (ms): a lock energised for 0 ms or for minutes is a fault.
PULSE_MS_MIN = 1
PULSE_MS_MAX = 10_000
#: Write function codes that a broadcast (unit 0) applies.
WRITE_CODES = frozenset({5, 6, 15, 16})
SUPPORTED_CODES = frozenset({1, 2, 3, 4, 5, 6, 15, 16})
_COIL_ON, _COIL_OFF = 0xFF00, 0x0000

_DECODER = DecodePDU(is_server=True)


class BoardError(Exception):
    """A request the board refuses; `code` is the Modbus exception code of the reply."""

    def __init__(self, code: ExcCodes) -> None:
        super().__init__(code.name)
        self.code = code


def _span(address: int, count: int, size: int) -> range:
    if count < 1 or address < 0 or address + count > size:
        raise BoardError(ExcCodes.ILLEGAL_ADDRESS)
    return range(address, address + count)


class SimBoard:
    """A lock board with `channels` locks and door sensors at Modbus unit `unit`."""

    def __init__(
        self,
        unit: int,
        channels: int = 16,
        pulse_ms_default: int = 500,
        *,
        open_delay_s: float = 0.05,
        auto_close_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        record_limit: int = 10_000,
        map_version: int = MAP_VERSION,
        presence: bool = False,
    ) -> None:
        """`map_version` 1 or 2; `presence` (v2 only): one presence sensor per channel."""
        if map_version not in (MAP_VERSION, MAP_VERSION_PRESENCE):
            raise ValueError(f"map_version must be 1 or 2, got {map_version}")
        if presence and map_version < MAP_VERSION_PRESENCE:
            raise ValueError("presence sensors need register map v2")
        if not 1 <= unit <= 247:
            raise ValueError(f"unit must be 1..247, got {unit}")
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError(f"channels must be 1..{MAX_CHANNELS}, got {channels}")
        if not PULSE_MS_MIN <= pulse_ms_default <= PULSE_MS_MAX:
            raise ValueError(f"pulse_ms_default must be {PULSE_MS_MIN}..{PULSE_MS_MAX} ms")
        self.unit = unit
        self.channels = channels
        self.clock = clock
        self.pulse_ms_default = pulse_ms_default
        self.pulse_ms = pulse_ms_default
        #: An unplugged board: the bus forwards nothing to it and it never answers.
        self.silent = False
        #: Door inputs that cannot be read (a failed input stage): the board answers every
        #: door read (FC02) with Modbus exception 4, device failure; its locks still work.
        self.inputs_failed = False
        self.doors = [
            Door(unit, ch, open_delay_s=open_delay_s, auto_close_s=auto_close_s)
            for ch in range(channels)
        ]
        #: Every lock energisation, oldest first (bounded: a demo may run for days).
        self.pulses: deque[Pulse] = deque(maxlen=record_limit)
        self.map_version = map_version
        self.has_presence = presence
        #: What each compartment holds (True: a parcel, or anything the IR beam sees).
        self.contents = [False] * channels

    def __repr__(self) -> str:
        return f"SimBoard(unit={self.unit}, channels={self.channels}, pulse_ms={self.pulse_ms})"

    # -- the script's hands ------------------------------------------------------------

    def door(self, channel: int) -> Door:
        if not 0 <= channel < self.channels:
            raise IndexError(f"board {self.unit} has channels 0..{self.channels - 1}")
        return self.doors[channel]

    def pulse(self, channel: int) -> None:
        """Energise one lock for the board's pulse time, as a coil write of 1 does."""
        now = self.clock()
        self.door(channel).pulse(now, self.pulse_ms / 1000)
        self.pulses.append(Pulse(self.unit, channel, now, self.pulse_ms))

    def restart(self) -> None:
        """A reset (a brown-out when a solenoid fires, a watchdog): every lock output drops
        and the pulse register is back at its default. The doors stay as they are."""
        now = self.clock()
        for door in self.doors:
            door.release(now)
        self.pulse_ms = self.pulse_ms_default

    def set_mode(self, channel: int, mode: DoorMode) -> None:
        door = self.door(channel)
        door.settle(self.clock())
        door.mode = mode

    def jam(self, channel: int, jammed: bool = True) -> None:
        """A jammed door stays shut through any pulse; unjam with `jammed=False`."""
        self.set_mode(channel, DoorMode.JAMMED if jammed else DoorMode.NORMAL)

    def stuck_sensor(self, channel: int, value: bool | None) -> None:
        """The sensor reads `value` whatever the door does; None mends it."""
        door = self.door(channel)
        door.settle(self.clock())
        door.stuck = value

    def open(self, channel: int) -> None:
        self.door(channel).open(self.clock())

    def force_open(self, channel: int) -> None:
        self.door(channel).force_open(self.clock())

    def close(self, channel: int) -> None:
        self.door(channel).close(self.clock())

    def put(self, channel: int, inside: bool = True) -> None:
        """Something goes into (or, with `inside=False`, comes out of) compartment `channel`.

        No door check: a test may script a hand through a forced door, or a
        sensor stuck at occupied, just as well.
        """
        self.door(channel)
        self.contents[channel] = inside

    def take(self, channel: int) -> None:
        self.put(channel, False)

    # -- what the registers hold -------------------------------------------------------

    def is_open(self, channel: int) -> bool:
        """The physical door (the truth a test checks a client's view against)."""
        return self.door(channel).is_open(self.clock())

    def sensor(self, channel: int) -> bool:
        return self.door(channel).sensor(self.clock())

    def coil(self, channel: int) -> bool:
        return self.door(channel).energised(self.clock())

    def input_registers(self) -> list[int]:
        if self.map_version == MAP_VERSION:
            return [MAP_VERSION, self.channels]
        return [self.map_version, self.channels, self.channels if self.has_presence else 0]

    # -- Modbus ------------------------------------------------------------------------

    def handle(self, pdu: bytes) -> ModbusPDU:
        """Execute one request PDU (function code + data); return the reply PDU for this unit."""
        try:
            reply = self._execute(pdu)
        except BoardError as exc:
            reply = ExceptionResponse(pdu[0] if pdu else 0, exc.code)
        reply.dev_id = self.unit
        return reply

    def _execute(self, pdu: bytes) -> ModbusPDU:
        if not pdu:
            raise BoardError(ExcCodes.ILLEGAL_FUNCTION)
        code = pdu[0]
        if code not in SUPPORTED_CODES:
            raise BoardError(ExcCodes.ILLEGAL_FUNCTION)
        request = _DECODER.decode(pdu)
        if request is None:  # a supported code whose data pymodbus refuses (count out of range)
            raise BoardError(ExcCodes.ILLEGAL_VALUE)
        if code in (1, 2):
            return self._read_bits(code, request)
        if code == 3:
            _span(request.address, request.count, 1)
            return pdu_reg.ReadHoldingRegistersResponse(registers=[self.pulse_ms])
        if code == 4:
            regs = self.input_registers()
            span = _span(request.address, request.count, len(regs))
            return pdu_reg.ReadInputRegistersResponse(registers=[regs[i] for i in span])
        if code == 5:
            return self._write_coil(request, int.from_bytes(pdu[3:5], "big"))
        if code == 15:
            return self._write_coils(request)
        return self._write_registers(code, request)

    def _read_bits(self, code: int, request: ModbusPDU) -> ModbusPDU:
        if code == 2 and self.has_presence and request.address >= PRESENCE_BASE:
            span = _span(request.address - PRESENCE_BASE, request.count, self.channels)
            if self.inputs_failed:
                raise BoardError(ExcCodes.DEVICE_FAILURE)
            return pdu_bit.ReadDiscreteInputsResponse(bits=[self.contents[ch] for ch in span])
        span = _span(request.address, request.count, self.channels)
        if code == 1:
            return pdu_bit.ReadCoilsResponse(bits=[self.coil(ch) for ch in span])
        if self.inputs_failed:
            raise BoardError(ExcCodes.DEVICE_FAILURE)
        return pdu_bit.ReadDiscreteInputsResponse(bits=[self.sensor(ch) for ch in span])

    def _set_coil(self, channel: int, on: bool) -> None:
        if on:
            self.pulse(channel)
        else:
            self.door(channel).release(self.clock())

    def _write_coil(self, request: ModbusPDU, raw_value: int) -> ModbusPDU:
        if raw_value not in (_COIL_ON, _COIL_OFF):
            raise BoardError(ExcCodes.ILLEGAL_VALUE)
        _span(request.address, 1, self.channels)
        self._set_coil(request.address, raw_value == _COIL_ON)
        # The normal reply echoes the request (the coil may already read 0 again).
        return pdu_bit.WriteSingleCoilResponse(
            address=request.address, bits=[raw_value == _COIL_ON]
        )

    def _write_coils(self, request: ModbusPDU) -> ModbusPDU:
        if not isinstance(request, pdu_bit.WriteMultipleCoilsRequest):
            raise BoardError(ExcCodes.ILLEGAL_FUNCTION)
        if request.byte_count != (request.count + 7) // 8 or request.data_byte_count != (
            request.byte_count
        ):
            raise BoardError(ExcCodes.ILLEGAL_VALUE)
        span = _span(request.address, request.count, self.channels)
        for ch, on in zip(span, request.bits, strict=True):
            self._set_coil(ch, on)
        return pdu_bit.WriteMultipleCoilsResponse(address=request.address, count=request.count)

    def _write_registers(self, code: int, request: ModbusPDU) -> ModbusPDU:
        values: Sequence[int] = request.registers
        if code == 16 and not 1 <= request.count == len(values) <= 123:
            raise BoardError(ExcCodes.ILLEGAL_VALUE)
        _span(request.address, len(values), 1)
        if not PULSE_MS_MIN <= values[0] <= PULSE_MS_MAX:
            raise BoardError(ExcCodes.ILLEGAL_VALUE)
        self.pulse_ms = values[0]
        if code == 6:
            return pdu_reg.WriteSingleRegisterResponse(address=request.address, registers=values)
        return pdu_reg.WriteMultipleRegistersResponse(address=request.address, count=len(values))

    def broadcast(self, pdu: bytes) -> None:
        """Apply a broadcast write (unit 0); a broadcast never gets a reply, so errors vanish."""
        if pdu and pdu[0] in WRITE_CODES:
            self.handle(pdu)
