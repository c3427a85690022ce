"""RawWriteSingleCoil: an FC05 PDU whose 16-bit value field is sent and decoded as given.

pymodbus's own `WriteSingleCoilRequest` encodes `bits[0]` as 0xFF00 or
0x0000 only, which is all the Modbus spec allows. Waveshare's relay boards
overload FC05: a write to 0x0200 + ch with value N means "relay on for
N x 100 ms". This PDU carries that value; framing and CRC stay pymodbus's.
Registered on the client with `client.register(RawWriteSingleCoil)`, it also
decodes the board's FC05 echo, so the bus can check the value came back.
"""

from __future__ import annotations

import struct

from pymodbus.pdu import ModbusPDU


class RawWriteSingleCoil(ModbusPDU):
    """FC05 request and response: address and value, big-endian, 4 bytes."""

    function_code = 5
    rtu_frame_size = 8  # unit + fc + 4 data bytes + 2 CRC bytes

    def __init__(
        self, address: int = 0, value: int = 0, dev_id: int = 0, transaction_id: int = 0
    ) -> None:
        super().__init__(dev_id=dev_id, transaction_id=transaction_id, address=address)
        self.value = value
        self.bits = [bool(value)]

    def encode(self) -> bytes:
        self.verifyAddress()
        if not 0 <= self.value <= 0xFFFF:
            raise ValueError(f"FC05 value must fit 16 bits, got {self.value}")
        return struct.pack(">HH", self.address, self.value)

    def decode(self, data: bytes) -> None:
        self.address, self.value = struct.unpack(">HH", data[:4])
        self.bits = [bool(self.value)]
