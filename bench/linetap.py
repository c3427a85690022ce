"""`python -m bench.linetap BAUD CHANNELS`: a simulated lock board on a pty that notes first bytes.

A child process of the command bench (bench/command.py), so that the line's
clock is not held up by the process being measured. It serves one kiosk-v1
board (unit 1) with the simulator's own RTU server (wire timing on, exact
timers), prints `path <slave path>`, then one line per unlock it applies:
`fc05 <unit> <channel> <ns>`, where `ns` is `time.monotonic_ns()` when the
first byte of that request was read off the line (CLOCK_MONOTONIC: the same
clock in every process on Linux). Doors spring open 2 ms after a pulse and
shut themselves 20 ms after opening. Ends when stdin closes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import termios
import time
import tty

from firmware_bridge.simboard import FrameRecord, RtuServer, SimBoard, SimBus

OPEN_DELAY_S = 0.002
AUTO_CLOSE_S = 0.02
PULSE_MS = 100


def _raw_line(fd: int, baudrate: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = getattr(termios, f"B{baudrate}")
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


async def serve(baudrate: int, channels: int) -> None:
    loop = asyncio.get_running_loop()
    bus = SimBus(
        [SimBoard(1, channels, PULSE_MS, open_delay_s=OPEN_DELAY_S, auto_close_s=AUTO_CLOSE_S)]
    )
    master, slave = os.openpty()  # the slave stays open here: clients may come and go
    _raw_line(slave, baudrate)
    os.set_blocking(master, False)
    first_ns = 0

    def on_frame(record: FrameRecord) -> None:
        nonlocal first_ns
        raw = record.raw
        if record.function_code == 5 and record.outcome == "reply" and raw[4:6] == b"\xff\x00":
            channel = int.from_bytes(raw[2:4], "big")
            sys.stdout.write(f"fc05 {raw[0]} {channel} {first_ns}\n")
            sys.stdout.flush()
        first_ns = 0  # the next byte read starts the next request

    def readable() -> None:
        nonlocal first_ns
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        if not first_ns:
            first_ns = time.monotonic_ns()
        server.feed(data)

    bus.on_frame = on_frame
    server = RtuServer(
        bus, lambda data: os.write(master, data), baudrate=baudrate, wire_timing=True, precise=True
    )
    server.start()
    loop.add_reader(master, readable)
    print(f"path {os.ttyname(slave)}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    loop.remove_reader(master)
    await server.stop()
    os.close(master)
    os.close(slave)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
