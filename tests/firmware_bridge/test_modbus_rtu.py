"""ModbusLockBank over a real pseudo-terminal with real RTU framing, against the simulated board."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from firmware_bridge.bank import BoardUnavailable, ChannelRef, DoorState, LockBank, UnknownChannel
from firmware_bridge.modbus import (
    BoardNotAnswering,
    BoardRefused,
    BoardSpec,
    BusSettings,
    ModbusBus,
    ModbusLockBank,
    WrongRegisterMap,
)
from firmware_bridge.simboard import PtyLink, SimBoard, SimBus, serve_pty

BUS = "rs485"
#: A reply is awaited this long: far more than any answer takes on a loaded machine,
#: so a test that expects answers never sees a timeout it did not make.
TIMEOUT_S = 1.0
#: The tests that wait out a silence (a dead board, a lost frame) wait this long instead.
SILENCE_TIMEOUT_S = 0.25
PULSE_MS = 300


@dataclass
class Rig:
    sim: SimBus
    link: PtyLink
    bus: ModbusBus
    bank: ModbusLockBank


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """Serves a SimBus on a pty and builds a bank on its path; tears everything down."""
    rigs: list[Rig] = []

    async def make(
        sim: SimBus | None = None,
        specs: list[BoardSpec] | None = None,
        *,
        timeout_s: float = TIMEOUT_S,
        retries: int = 2,
        start: bool = True,
        check_s: float = 5.0,
    ) -> Rig:
        sim = sim or SimBus.of(units=2, channels=4, open_delay_s=0.01)
        link = await serve_pty(sim, baudrate=115200)
        specs = specs or [
            BoardSpec(BUS, unit, channels=board.channels, pulse_ms=PULSE_MS)
            for unit, board in sorted(sim.boards.items())
        ]
        settings = BusSettings(
            BUS, "rtu", device=link.path, baudrate=115200, timeout_s=timeout_s, retries=retries
        )
        bus = ModbusBus(settings)
        rig = Rig(sim, link, bus, ModbusLockBank([bus], specs, check_s=check_s))
        rigs.append(rig)
        if start:
            await rig.bank.start()
        return rig

    yield make
    for rig in rigs:
        await rig.bank.close()
        await rig.link.stop()


async def doors_until(
    bank: LockBank, ref: ChannelRef, state: DoorState, within_s: float = 1.0
) -> dict[ChannelRef, DoorState]:
    """Poll read_doors until `ref` reads `state` (fails the test after `within_s`)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        doors = await bank.read_doors()
        if doors[ref] is state or asyncio.get_running_loop().time() > deadline:
            assert doors[ref] is state, doors
            return doors
        await asyncio.sleep(0.01)


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_the_bank_is_a_lockbank_and_starts_with_every_door_shut(make_rig: MakeRig) -> None:
    rig = await make_rig()
    assert isinstance(rig.bank, LockBank)
    doors = await rig.bank.read_doors()
    assert doors == {ChannelRef(BUS, u, ch): DoorState.SHUT for u in (1, 2) for ch in range(4)}


async def test_unlock_pulses_the_lock_and_read_doors_then_shows_it_open(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ref = ChannelRef(BUS, 2, 3)
    await rig.bank.unlock(ref)
    doors = await doors_until(rig.bank, ref, DoorState.OPEN)
    assert rig.sim[2].is_open(3)
    assert [(p.unit, p.channel, p.ms) for p in rig.sim.pulses] == [(2, 3, PULSE_MS)]
    assert all(state is DoorState.SHUT for r, state in doors.items() if r != ref)
    assert rig.bank.describe()[1].counters["pulses"] == 1


async def test_start_writes_the_pulse_length_and_switches_off_any_output_left_on(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    sim = SimBus.of(units=1, channels=4, open_delay_s=0.01)
    sim[1].jam(2)
    sim[1].pulse(2)  # left energised (default 500 ms pulse) by a crashed predecessor
    assert sim[1].coil(2)
    await make_rig(sim, [BoardSpec(BUS, 1, channels=4, pulse_ms=250, max_pulse_ms=400)])
    assert sim[1].pulse_ms == 250
    assert not sim[1].coil(2)
    assert messages(caplog, "lock output 2 was on")
    codes = [f.function_code for f in sim.frames]
    assert codes == [4, 6, 1, 5]  # identify, pulse length, read outputs, output 2 off


async def test_several_boards_on_one_bus_one_fc02_per_board_per_read(make_rig: MakeRig) -> None:
    sim = SimBus.of(units=3, channels=8, open_delay_s=0.01)
    rig = await make_rig(sim)
    before = len(sim.frames)
    doors = await rig.bank.read_doors()
    assert len(doors) == 24
    reads = [(f.unit, f.function_code) for f in list(sim.frames)[before:]]
    assert reads == [(1, 2), (2, 2), (3, 2)]
    await rig.bank.unlock(ChannelRef(BUS, 3, 7))
    await doors_until(rig.bank, ChannelRef(BUS, 3, 7), DoorState.OPEN)
    assert not sim[1].is_open(7) and not sim[2].is_open(7)


async def test_concurrent_callers_are_serialised_on_the_bus(make_rig: MakeRig) -> None:
    rig = await make_rig()
    calls = [rig.bank.read_doors() for _ in range(8)]
    calls += [rig.bank.unlock(ChannelRef(BUS, 1, 0)), rig.bank.unlock(ChannelRef(BUS, 2, 1))]
    await asyncio.gather(*calls)
    assert {f.outcome for f in rig.sim.frames} == {"reply"}
    for info in rig.bank.describe():
        assert info.counters["timeouts"] == info.counters["bad_frames"] == 0


async def test_silent_board_reads_unknown_logs_once_and_recovery_once(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="firmware_bridge")
    rig = await make_rig(timeout_s=SILENCE_TIMEOUT_S)
    rig.sim[2].silent = True
    for _ in range(3):
        doors = await rig.bank.read_doors()
        assert {doors[ChannelRef(BUS, 2, ch)] for ch in range(4)} == {DoorState.UNKNOWN}
        assert {doors[ChannelRef(BUS, 1, ch)] for ch in range(4)} == {DoorState.SHUT}
    with pytest.raises(BoardUnavailable) as info:
        await rig.bank.unlock(ChannelRef(BUS, 2, 0))
    assert isinstance(info.value, BoardNotAnswering)
    assert "A/B wiring" in info.value.fix and "termination" in info.value.fix
    board2 = rig.bank.describe()[1]
    assert not board2.online
    assert board2.counters["door_read_failures"] == 3
    # 3 attempts until it is known offline, then one probe per request: 3 + 1 + 1 + 1
    assert board2.counters["timeouts"] == 6
    assert len(messages(caplog, "board 2 is offline")) == 1
    assert not messages(caplog, "back online")

    rig.sim[2].silent = False
    await rig.bank.read_doors()
    await rig.bank.read_doors()
    assert rig.bank.describe()[1].online
    assert len(messages(caplog, "board 2 is back online")) == 1
    assert len(messages(caplog, "board 2 is offline")) == 1
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]


async def test_a_board_back_from_an_outage_is_set_up_again_before_its_next_unlock(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(timeout_s=SILENCE_TIMEOUT_S)
    rig.sim[2].silent = True
    await rig.bank.read_doors()
    rig.sim[2].pulse_ms = 500  # it lost power: its pulse register is back at the default
    rig.sim[2].silent = False
    await rig.bank.read_doors()
    before = len(rig.sim.frames)
    await rig.bank.unlock(ChannelRef(BUS, 2, 0))
    assert [f.function_code for f in list(rig.sim.frames)[before:]] == [4, 6, 1, 5]
    assert rig.sim[2].pulse_ms == PULSE_MS


async def test_one_silent_board_at_start_does_not_stop_the_others(make_rig: MakeRig) -> None:
    sim = SimBus.of(units=2, channels=4, open_delay_s=0.01)
    sim[2].silent = True
    rig = await make_rig(sim, timeout_s=SILENCE_TIMEOUT_S)
    assert [i.online for i in rig.bank.describe()] == [True, False]
    sim[2].silent = False
    await rig.bank.unlock(ChannelRef(BUS, 2, 1))  # set up on the way
    assert sim[2].pulse_ms == PULSE_MS
    await doors_until(rig.bank, ChannelRef(BUS, 2, 1), DoorState.OPEN)


async def test_no_board_answering_at_start_fails_with_the_wiring_checklist(
    make_rig: MakeRig,
) -> None:
    sim = SimBus.of(units=2, channels=4)
    sim.silent = True
    rig = await make_rig(sim, start=False, timeout_s=SILENCE_TIMEOUT_S)
    with pytest.raises(BoardUnavailable, match=r"no board answered at units 1, 2") as info:
        await rig.bank.start()
    assert "baud rate" in info.value.fix


async def test_slow_reply_within_the_timeout_is_not_a_fault(make_rig: MakeRig) -> None:
    rig = await make_rig()  # TIMEOUT_S: far longer than the hold, never raced
    rig.sim.slow_s = 0.1
    doors = await rig.bank.read_doors()
    assert set(doors.values()) == {DoorState.SHUT}
    for info in rig.bank.describe():
        assert (info.counters["timeouts"], info.counters["retries"]) == (0, 0)


async def test_a_dropped_request_is_retried_and_counted(make_rig: MakeRig) -> None:
    rig = await make_rig(timeout_s=SILENCE_TIMEOUT_S)
    rig.sim.drop_next()
    doors = await rig.bank.read_doors()
    assert set(doors.values()) == {DoorState.SHUT}
    counters = rig.bank.describe()[0].counters
    assert (counters["timeouts"], counters["retries"], counters["bad_frames"]) == (1, 1, 0)
    assert rig.bank.describe()[0].online


async def test_an_unlock_whose_reply_is_lost_is_not_sent_twice(make_rig: MakeRig) -> None:
    rig = await make_rig(timeout_s=SILENCE_TIMEOUT_S)
    rig.sim.drop_next(applied=True)  # the board pulses; its acknowledgement is lost
    await rig.bank.unlock(ChannelRef(BUS, 1, 2))
    assert len(rig.sim[1].pulses) == 1  # the coil read back 1: not re-sent mid-pulse
    assert [f.function_code for f in rig.sim.frames][-2:] == [5, 1]


async def test_an_unlock_lost_on_the_way_is_sent_again(make_rig: MakeRig) -> None:
    rig = await make_rig(timeout_s=SILENCE_TIMEOUT_S)
    rig.sim.drop_next()  # the board never saw it
    await rig.bank.unlock(ChannelRef(BUS, 1, 2))
    assert len(rig.sim[1].pulses) == 1
    assert [f.outcome for f in rig.sim.frames][-3:] == ["dropped", "reply", "reply"]


async def test_corrupted_reply_is_a_bad_frame_then_the_retry_succeeds(make_rig: MakeRig) -> None:
    rig = await make_rig(timeout_s=SILENCE_TIMEOUT_S)
    rig.sim.corrupt_next()
    doors = await rig.bank.read_doors()
    assert set(doors.values()) == {DoorState.SHUT}
    counters = rig.bank.describe()[0].counters
    assert (counters["bad_frames"], counters["timeouts"], counters["retries"]) == (1, 0, 1)


class V3Board(SimBoard):
    """A board flashed with some other register map (version 3: v1 and v2 are known)."""

    def input_registers(self) -> list[int]:
        return [3, self.channels]


async def test_wrong_register_map_version_is_a_clear_error_at_start(make_rig: MakeRig) -> None:
    sim = SimBus([V3Board(1, 4)])
    rig = await make_rig(sim, start=False, timeout_s=SILENCE_TIMEOUT_S)
    with pytest.raises(WrongRegisterMap, match="wrong register-map version 3") as info:
        await rig.bank.start()
    assert "bus 'rs485' board 1" in str(info.value)
    # the port was released: another bank opens it (and finds no unit 2 there)
    bank = ModbusLockBank([ModbusBus(rig.bus.settings)], [BoardSpec(BUS, 2, channels=4)])
    with pytest.raises(BoardUnavailable, match="no board answered"):
        await bank.start()


async def test_a_board_with_too_few_channels_is_refused_at_start(make_rig: MakeRig) -> None:
    sim = SimBus.of(units=1, channels=4)
    rig = await make_rig(sim, [BoardSpec(BUS, 1, channels=8)], start=False)
    with pytest.raises(WrongRegisterMap, match=r"board has 4 channels.*config asks for 8"):
        await rig.bank.start()


async def test_an_exception_reply_is_counted_and_named(make_rig: MakeRig) -> None:
    sim = SimBus.of(units=1, channels=4)  # the board accepts pulses up to 10 s
    spec = BoardSpec(BUS, 1, channels=4, pulse_ms=20_000, max_pulse_ms=30_000)
    rig = await make_rig(sim, [spec], start=False)
    with pytest.raises(BoardRefused, match="Modbus exception 3"):
        await rig.bank.start()
    info = rig.bank.describe()[0]
    assert info.online and info.counters["errors"] == 1


async def test_a_stuck_sensor_is_reported_as_it_reads(make_rig: MakeRig) -> None:
    """The bank reports the sensor, not the door: "did it open?" is the service's check."""
    rig = await make_rig()
    rig.sim[1].stuck_sensor(0, True)
    assert (await rig.bank.read_doors())[ChannelRef(BUS, 1, 0)] is DoorState.OPEN
    assert not rig.sim[1].is_open(0)
    rig.sim[1].stuck_sensor(1, False)
    await rig.bank.unlock(ChannelRef(BUS, 1, 1))
    await asyncio.sleep(0.05)
    assert rig.sim[1].is_open(1)
    assert (await rig.bank.read_doors())[ChannelRef(BUS, 1, 1)] is DoorState.SHUT


async def test_unknown_channels_and_an_unstarted_bank_are_refused(make_rig: MakeRig) -> None:
    rig = await make_rig(start=False)
    with pytest.raises(BoardUnavailable, match="not started"):
        await rig.bank.read_doors()
    await rig.bank.start()
    with pytest.raises(UnknownChannel):
        await rig.bank.unlock(ChannelRef(BUS, 1, 4))
    with pytest.raises(UnknownChannel):
        await rig.bank.unlock(ChannelRef(BUS, 9, 0))
    with pytest.raises(UnknownChannel):
        await rig.bank.unlock(ChannelRef("other", 1, 0))


async def test_close_is_idempotent_and_releases_the_port(make_rig: MakeRig) -> None:
    rig = await make_rig()
    await rig.bank.close()
    await rig.bank.close()
    again = ModbusLockBank([ModbusBus(rig.bus.settings)], [BoardSpec(BUS, 1, channels=4)])
    await again.start()
    assert (await again.read_doors())[ChannelRef(BUS, 1, 0)] is DoorState.SHUT
    await again.close()


def test_layouts_that_cannot_work_are_refused_at_construction() -> None:
    bus = ModbusBus(BusSettings(BUS, "rtu", device="/dev/ttyUSB0"))
    with pytest.raises(ValueError, match="used twice"):
        ModbusLockBank([bus], [BoardSpec(BUS, 1), BoardSpec(BUS, 1)])
    with pytest.raises(ValueError, match=r"1\.\.247"):
        ModbusLockBank([bus], [BoardSpec(BUS, 248)])
    with pytest.raises(ValueError, match="no Modbus bus named 'x'"):
        ModbusLockBank([bus], [BoardSpec("x", 1)])
    with pytest.raises(ValueError, match=r"1\.\.8 channels"):
        ModbusLockBank([bus], [BoardSpec(BUS, 1, profile="waveshare-relay-d", channels=16)])
    with pytest.raises(ValueError, match="max_pulse_ms"):
        ModbusLockBank([bus], [BoardSpec(BUS, 1, pulse_ms=3000, max_pulse_ms=2000)])
    with pytest.raises(ValueError, match="has no board"):
        ModbusLockBank([bus], [])


async def test_a_board_that_restarts_between_polls_gets_its_pulse_length_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No outage seen (it answered every poll), yet its pulse register is back at 500 ms."""
    sim = SimBus.of(units=2, channels=4, open_delay_s=0.01)
    link = await serve_pty(sim, baudrate=115200)
    settings = BusSettings(BUS, "rtu", device=link.path, baudrate=115200, timeout_s=TIMEOUT_S)
    specs = [BoardSpec(BUS, unit, channels=4, pulse_ms=PULSE_MS) for unit in (1, 2)]
    bank = ModbusLockBank([ModbusBus(settings)], specs, check_s=0.2)
    try:
        await bank.start()
        await bank.read_doors()
        assert [sim[u].pulse_ms for u in (1, 2)] == [PULSE_MS, PULSE_MS]
        sim[2].restart()
        assert sim[2].pulse_ms == 500
        deadline = asyncio.get_running_loop().time() + 2.0
        while sim[2].pulse_ms != PULSE_MS:
            assert asyncio.get_running_loop().time() < deadline, "pulse length never rewritten"
            await bank.read_doors()
            await asyncio.sleep(0.02)
        counts = {i.unit: i.counters["settings_rewritten"] for i in bank.describe()}
        assert counts == {1: 0, 2: 1}
        assert len(messages(caplog, "board 2: its pulse length read 500")) == 1
        assert all(i.online for i in bank.describe())  # it never looked offline
    finally:
        await bank.close()
        await link.stop()


async def test_settings_are_read_back_once_a_pulse_is_over(make_rig: MakeRig) -> None:
    """The inrush of a solenoid is the likeliest reset: the first poll after the pulse
    looks, without waiting for the periodic read-back."""
    rig = await make_rig()
    ref = ChannelRef(BUS, 1, 2)
    await rig.bank.unlock(ref)
    rig.sim[1].restart()  # the pulse browned the board out
    await asyncio.sleep(PULSE_MS / 1000 + 0.02)
    before = len(rig.sim.frames)
    await rig.bank.read_doors()
    sent = [(f.unit, f.function_code) for f in list(rig.sim.frames)[before:]]
    # doors, read back, rewrite, read back again; board 2 as ever
    assert sent == [(1, 2), (1, 3), (1, 6), (1, 3), (2, 2)]
    assert rig.sim[1].pulse_ms == PULSE_MS
    before = len(rig.sim.frames)
    await rig.bank.read_doors()  # checked just now: the next polls are doors only
    assert [f.function_code for f in list(rig.sim.frames)[before:]] == [2, 2]


async def test_no_read_back_while_a_pulse_runs_and_one_right_after_even_when_overdue(
    make_rig: MakeRig,
) -> None:
    """The periodic read-back falls due; an unlock comes first. Polls during the pulse
    (a door-wait loop polls every 50 ms) must not spend it: the board may reset as the
    solenoid fires, and only a read after the pulse can see that."""
    rig = await make_rig(check_s=0.05)
    bank = rig.bank
    await asyncio.sleep(0.1)  # the periodic read-back is due
    await bank.unlock(ChannelRef(BUS, 1, 0))
    before = len(rig.sim.frames)
    await bank.read_doors()  # mid-pulse: board 1's doors only (board 2 is read back: due)
    sent = [(f.unit, f.function_code) for f in list(rig.sim.frames)[before:]]
    assert sent == [(1, 2), (2, 2), (2, 3)]
    rig.sim[1].restart()  # the board browned out under the solenoid
    await asyncio.sleep(PULSE_MS / 1000 + 0.02)
    await bank.read_doors()
    assert rig.sim[1].pulse_ms == PULSE_MS
    assert bank.describe()[0].counters["settings_rewritten"] == 1


class ForgetfulBoard(SimBoard):
    """Test fake: answers a pulse-length write, but keeps its own 500 ms."""

    def handle(self, pdu: bytes):  # type: ignore[no-untyped-def]
        reply = super().handle(pdu)
        self.pulse_ms = self.pulse_ms_default
        return reply


async def test_a_board_that_does_not_keep_its_pulse_length_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = SimBus([ForgetfulBoard(1, 4, open_delay_s=0.01)])
    link = await serve_pty(sim, baudrate=115200)
    settings = BusSettings(BUS, "rtu", device=link.path, baudrate=115200, timeout_s=TIMEOUT_S)
    spec = BoardSpec(BUS, 1, channels=4, pulse_ms=PULSE_MS)
    bank = ModbusLockBank([ModbusBus(settings)], [spec], check_s=0.0)
    try:
        await bank.start()
        for _ in range(5):
            await bank.read_doors()
        counters = bank.describe()[0].counters
        assert counters["settings_rewritten"] == 0  # never counted as a restart mended
        assert counters["settings_failures"] == 5
        assert len(messages(caplog, "does not keep its pulse length")) == 1
    finally:
        await bank.close()
        await link.stop()


async def test_read_backs_are_spread_one_board_per_poll(make_rig: MakeRig) -> None:
    """All boards due at once (as they are after start): one FC03 per reading of the bus,
    so no poll waits on every board's read-back (8 at 9,600 baud would be ~130 ms)."""
    sim = SimBus.of(units=4, channels=2, open_delay_s=0.01)
    rig = await make_rig(sim, check_s=1.0)
    await asyncio.sleep(1.05)  # every board due; the next round is a second away
    checked: list[int] = []
    for _ in range(4):
        before = len(rig.sim.frames)
        await rig.bank.read_doors()
        sent = [(f.unit, f.function_code) for f in list(rig.sim.frames)[before:]]
        assert [u for u, fc in sent if fc == 2] == [1, 2, 3, 4]  # every door, every time
        reads = [u for u, fc in sent if fc == 3]
        assert len(reads) == 1
        checked += reads
    assert sorted(checked) == [1, 2, 3, 4]  # each board in turn
