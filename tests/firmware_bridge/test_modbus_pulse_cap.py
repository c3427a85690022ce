"""A second unlock while a Modbus pulse runs never extends it: it waits, then pulses anew."""

from __future__ import annotations

import asyncio
import time

from firmware_bridge.bank import ChannelRef
from firmware_bridge.modbus import BoardSpec
from firmware_bridge.simboard.bank import SimulatedLockBank

REF = ChannelRef("rs485", 1, 0)


async def test_unlock_during_a_pulse_waits_for_it_to_end() -> None:
    bank = SimulatedLockBank(
        "rs485",
        [BoardSpec("rs485", 1, "kiosk-v1", 4, pulse_ms=300, max_pulse_ms=300)],
        door_close_s=0,
    )
    await bank.start()
    try:
        board = bank.sim[1]
        board.jam(0)
        on_spans: list[float] = []
        started: float | None = None

        async def watch() -> None:
            nonlocal started
            while True:
                now, on = time.monotonic(), board.coil(0)
                if on and started is None:
                    started = now
                if not on and started is not None:
                    on_spans.append(now - started)
                    started = None
                await asyncio.sleep(0.005)

        watcher = asyncio.get_running_loop().create_task(watch())
        await bank.unlock(REF)
        await asyncio.sleep(0.1)
        await bank.unlock(REF)  # mid-pulse: must not restart the board's timer
        await asyncio.sleep(0.5)
        watcher.cancel()
        assert len(board.pulses) == 2
        assert len(on_spans) == 2, on_spans
        assert all(span <= 0.3 + 0.08 for span in on_spans), on_spans
    finally:
        await bank.close()
