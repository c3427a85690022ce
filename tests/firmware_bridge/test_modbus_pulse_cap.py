"""A second unlock while a Modbus pulse runs never extends it: it waits, then pulses anew."""

from __future__ import annotations

from firmware_bridge.bank import ChannelRef
from firmware_bridge.modbus import BoardSpec
from firmware_bridge.simboard.bank import SimulatedLockBank

REF = ChannelRef("rs485", 1, 0)


async def test_unlock_during_a_pulse_waits_for_it_to_end() -> None:
    """Read off the board's own record (when each pulse began, on its clock, and how long it
    was told to last), not by sampling the coil: a busy machine delays a sampler, not that."""
    bank = SimulatedLockBank(
        "rs485",
        [BoardSpec("rs485", 1, "kiosk-v1", 4, pulse_ms=300, max_pulse_ms=300)],
        door_close_s=0,
    )
    await bank.start()
    try:
        board = bank.sim[1]
        board.jam(0)
        await bank.unlock(REF)  # acknowledged: the board's 300 ms pulse has begun
        await bank.unlock(REF)  # at once, mid-pulse: must not restart the board's timer
        first, second = board.pulses
        assert (first.ms, second.ms) == (300, 300)  # never told more than the cap
        # The second write reached the board only once the first pulse was over: the coil
        # was never energised for longer than one pulse.
        assert second.t >= first.t + first.ms / 1000
    finally:
        await bank.close()
