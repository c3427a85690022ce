"""A dead board on a real pty: how long the person at the keypad waits for `hardware_error`.

The real `LockerService` and ledger file, `ModbusLockBank` and `ModbusBus` at
the shipped bus defaults (`timeout_s` 0.3 s, `retries` 2: three attempts), a
pseudo-terminal, and the simulated board's RTU server with its unit 1
unplugged (`SimBoard.silent`) for each timed code. Before each sample the
board answers one door read, so the bus counts it online and gives it every
retry, as for a board that has just died.

Measured: `service.submit_code(code)` for a delivery, from the call until it
raises `hardware_error`; and, from the simulated line's frame record, the
door reads (FC02) and unlock writes (FC05) sent to the board while the code
was handled. The first code finds the board set up and sends one FC05 (and
the bus reads its coil back twice); a board once offline is set up again
before its next unlock, so later codes stop at that set-up, before any FC05.
With the policy's `door_open_timeout_s` (5 s) and one retry, the wait after
a failed unlock that this replaced cost about 12 s.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from bench.stats import MS, summarise
from firmware_bridge.modbus import BoardSpec, BusSettings, ModbusBus, ModbusLockBank
from firmware_bridge.simboard import SimBoard, SimBus, serve_pty
from kiosk.clock import SystemClock
from kiosk.config.model import LockerConfig, PolicyConfig
from kiosk.domain.errors import HardwareError
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService

BUS, BAUD, CHANNELS = "rs485", 115200, 4
FC_READ_DOORS, FC_WRITE_COIL = 2, 5


async def _run(workdir: Path, codes: int) -> dict[str, Any]:
    sim = SimBus([SimBoard(1, CHANNELS)])
    link = await serve_pty(sim, baudrate=BAUD, wire_timing=True)
    settings = BusSettings(BUS, "rtu", device=link.path, baudrate=BAUD)  # shipped defaults
    bank = ModbusLockBank([ModbusBus(settings)], [BoardSpec(BUS, 1, "kiosk-v1", CHANNELS)])
    ledger = Ledger.open(workdir / "deadboard.db")
    lockers = tuple(LockerConfig(f"A-{ch + 1}", Size.S, BUS, 1, ch) for ch in range(CHANNELS))
    samples: list[int] = []
    door_reads = writes = 0
    try:
        await bank.start()
        policy = PolicyConfig()
        service = LockerService.build(
            ledger, bank, SystemClock(), os.urandom(32), lockers, policy, "bench", 0.05
        )
        await service.start()
        for _ in range(codes):
            sim[1].silent = False
            await bank.read_doors()  # answered: online, so the unlock gets every retry
            sim[1].silent = True
            code = service.announce(Size.S).delivery_code
            before = len(sim.frames)
            start = time.perf_counter_ns()
            try:
                await service.submit_code(code)
            except HardwareError:
                samples.append(time.perf_counter_ns() - start)
            else:
                raise RuntimeError("a silent board opened a door")
            sent = [f.function_code for f in list(sim.frames)[before:] if f.unit == 1]
            door_reads += sent.count(FC_READ_DOORS)
            writes += sent.count(FC_WRITE_COIL)
    finally:
        await bank.close()
        await link.stop()
        ledger.close()
    return {
        "timeout_s": settings.timeout_s,
        "attempts": 1 + settings.retries,
        "door_open_timeout_s": policy.door_open_timeout_s,
        "latency_ms": summarise(samples, MS),
        "door_reads_while_handled": door_reads,
        "unlock_frames": writes,
    }


def run(workdir: Path, codes: int = 20) -> dict[str, Any]:
    """`codes` delivery codes typed for a locker whose board is unplugged."""
    return asyncio.run(_run(workdir, codes))


def table(result: dict[str, Any]) -> list[str]:
    s = result["latency_ms"]
    budget = result["timeout_s"] * result["attempts"] * 1000
    return [
        f"Dead board: a code to hardware_error, Modbus RTU at {BAUD} baud over a pty, bus "
        f"defaults ({result['attempts']} attempts x {result['timeout_s']} s)",
        "",
        "| measure | n | p50 ms | p99 ms | max ms | retries x timeout ms |",
        "|---|---|---|---|---|---|",
        f"| code -> hardware_error | {s['n']} | {s['p50']:,.1f} | {s['p99']:,.1f} | "
        f"{s['max']:,.1f} | {budget:,.0f} |",
        "",
        f"Door reads of the board while a code was handled: "
        f"{result['door_reads_while_handled']}; unlock frames (FC05) sent to it, all codes: "
        f"{result['unlock_frames']} (the first code's, unanswered; later codes stop at the "
        "board's set-up, before any unlock frame)",
    ]
