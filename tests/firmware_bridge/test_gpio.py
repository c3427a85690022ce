"""GpioLockBank against gpiozero's own MockFactory pins: pulses, polarity, debounce, failures."""

from __future__ import annotations

import asyncio
import itertools
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from support.clock import FakeClock

from firmware_bridge.bank import (
    BoardUnavailable,
    ChannelRef,
    DoorState,
    LockBank,
    UnknownChannel,
)
from firmware_bridge.gpio import GpioChannel, GpioLockBank

BUS = "gpio0"
CHANNELS = [
    GpioChannel(channel=0, relay_pin=17, sensor_pin=5),
    GpioChannel(channel=1, relay_pin=27, sensor_pin=6),
    GpioChannel(channel=2, relay_pin=22, sensor_pin=13),
]
REF0 = ChannelRef(BUS, 1, 0)
REF1 = ChannelRef(BUS, 1, 1)
REF2 = ChannelRef(BUS, 1, 2)

#: Timing tolerance for real-time pulses: generous, this checks correctness, not speed (s).
SLACK_S = 0.25


class FlakyPin(MockPin):
    """A MockPin whose reads raise while `fail` is set (a broken wire or a dying GPIO chip)."""

    fail = False

    def _get_state(self) -> bool:
        if self.fail:
            raise OSError("GPIO read failed")
        return super()._get_state()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pin_factory = MockFactory(pin_class=FlakyPin)
    yield pin_factory
    pin_factory.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_bank(
    factory: MockFactory, clock: FakeClock
) -> AsyncIterator[Callable[..., GpioLockBank]]:
    """Builds banks on the mock factory and closes every one of them at teardown."""
    banks: list[GpioLockBank] = []

    def make(**kwargs: object) -> GpioLockBank:
        args: dict[str, object] = {
            "pulse_ms": 150,
            "max_pulse_ms": 1000,
            "pin_factory": factory,
            "clock": clock.monotonic,
        }
        args.update(kwargs)
        bank = GpioLockBank(BUS, CHANNELS, **args)  # type: ignore[arg-type]
        banks.append(bank)
        return bank

    yield make
    for bank in banks:
        await bank.close()


async def wait_for_state(pin: MockPin, state: bool, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while bool(pin.state) != state:
        assert time.monotonic() < deadline, f"{pin!r} never went {state}"
        await asyncio.sleep(0.005)


async def wait_for_changes(pin: MockPin, count: int, timeout_s: float = 5.0) -> None:
    """Until `pin` has recorded `count` states since clear_states(): its history, not its
    level, so a pulse that came and went between two looks (a busy machine) still counts,
    and a pulse whose thread has not started yet is waited for."""
    deadline = time.monotonic() + timeout_s
    while len(pin.states) < count:
        assert time.monotonic() < deadline, f"{pin!r} changed only {len(pin.states) - 1} times"
        await asyncio.sleep(0.005)


def on_times(pin: MockPin, active_high: bool = True) -> list[float]:
    """Durations (s) of every completed 'on' period in a MockPin's recorded history."""
    durations = []
    states = pin.states
    for prev, cur in itertools.pairwise(states):
        if bool(prev.state) == active_high and bool(cur.state) != active_high:
            durations.append(cur.timestamp)  # timestamp = time since the previous change
    return durations


def test_import_has_no_pin_factory_side_effect() -> None:
    code = "import firmware_bridge.gpio, gpiozero; assert gpiozero.Device.pin_factory is None"
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_is_a_lock_bank(make_bank: Callable[..., GpioLockBank]) -> None:
    assert isinstance(make_bank(), LockBank)


@pytest.mark.parametrize("active_high", [True, False])
async def test_all_outputs_off_right_after_start(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory, active_high: bool
) -> None:
    # Before start every relay pin sits at the "on" level of its relay.
    for chan in CHANNELS:
        pin = factory.pin(chan.relay_pin)
        pin.drive_high() if active_high else pin.drive_low()
    bank = make_bank(relay_active_high=active_high)
    await bank.start()
    for chan in CHANNELS:
        pin = factory.pin(chan.relay_pin)
        assert pin.function == "output"
        assert bool(pin.state) is (not active_high)


async def test_unlock_pulses_relay_for_pulse_ms(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    bank = make_bank(pulse_ms=150, max_pulse_ms=1000)
    await bank.start()
    relay = factory.pin(17)
    relay.clear_states()

    await bank.unlock(REF0)
    await wait_for_changes(relay, 3)  # on, then off

    assert [bool(s.state) for s in relay.states] == [False, True, False]
    [on_s] = on_times(relay)
    assert 0.150 * 0.9 <= on_s <= 0.150 + SLACK_S
    assert bank.describe()[0].counters["pulses"] == 1
    # The other relays never moved.
    assert [bool(s.state) for s in factory.pin(27).states][-1] is False
    assert not factory.pin(22).state


async def test_pulse_ends_even_if_the_event_loop_stalls(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    bank = make_bank(pulse_ms=100, max_pulse_ms=100)
    await bank.start()
    relay = factory.pin(27)
    relay.clear_states()

    await bank.unlock(REF1)
    deadline = time.monotonic() + 5.0
    while len(relay.states) < 3:  # blocks the loop: nothing async may run, only gpiozero's thread
        assert time.monotonic() < deadline, "the pulse never ended with the loop blocked"
        time.sleep(0.005)
    assert not relay.state
    [on_s] = on_times(relay)
    assert on_s <= 0.100 + SLACK_S  # the cap (pulse_ms == max_pulse_ms here)


async def test_unlock_during_a_pulse_waits_then_pulses_again(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    bank = make_bank(pulse_ms=200, max_pulse_ms=200)
    await bank.start()
    relay = factory.pin(17)
    relay.clear_states()

    await bank.unlock(REF0)
    await wait_for_changes(relay, 2)  # the first pulse is on (for 200 ms)
    await bank.unlock(REF0)  # at once, mid-pulse: not extended, a second pulse follows it
    await wait_for_changes(relay, 5)

    assert [bool(s.state) for s in relay.states] == [False, True, False, True, False]
    first, second = on_times(relay)
    assert first <= 0.200 + SLACK_S and second <= 0.200 + SLACK_S
    gap = relay.states[3].timestamp  # MockPin timestamps: time since the previous change
    assert gap >= 0.09  # the coil rests between the two pulses


async def test_unlock_waits_for_a_pulse_that_ends_late(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    """gpiozero's thread ends a pulse, and on a busy machine it ends it late: the next
    unlock waits for that end (the coil rests, then pulses) instead of calling the relay
    stuck. It used to wait for a count of 5 ms sleeps just past pulse_ms."""
    bank = make_bank(pulse_ms=60, max_pulse_ms=60)
    await bank.start()
    relay = factory.pin(17)
    relay.state = True  # the previous pulse, whose end is held back 0.25 s
    asyncio.get_running_loop().call_later(0.25, setattr, relay, "state", False)
    relay.clear_states()

    await bank.unlock(REF0)
    await wait_for_changes(relay, 4)  # the late end, then the new pulse on and off

    assert [bool(s.state) for s in relay.states] == [True, False, True, False]


async def test_a_relay_still_on_long_after_its_pulse_is_reported(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    bank = make_bank(pulse_ms=60, max_pulse_ms=60)
    await bank.start()
    relay = factory.pin(17)
    relay.state = True  # welded contacts, or a driver stuck on: it never goes off
    with pytest.raises(BoardUnavailable, match="relay still on after its pulse"):
        await bank.unlock(REF0)
    relay.state = False


async def test_active_low_relay_pulses_low(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    bank = make_bank(relay_active_high=False, pulse_ms=120)
    await bank.start()
    relay = factory.pin(22)
    assert relay.state  # off = high for an active-low relay
    relay.clear_states()

    await bank.unlock(REF2)
    await wait_for_changes(relay, 3)  # low, then high again

    assert [bool(s.state) for s in relay.states] == [True, False, True]
    [on_s] = on_times(relay, active_high=False)
    assert 0.120 * 0.9 <= on_s <= 0.120 + SLACK_S


async def test_unknown_channel_raises(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    bank = make_bank()
    await bank.start()
    for ref in (ChannelRef(BUS, 1, 9), ChannelRef(BUS, 2, 0), ChannelRef("rs485", 1, 0)):
        with pytest.raises(UnknownChannel) as err:
            await bank.unlock(ref)
        assert err.value.code == "unknown_channel"
    assert all(not factory.pin(c.relay_pin).state for c in CHANNELS)


async def test_unlock_before_start_is_refused(make_bank: Callable[..., GpioLockBank]) -> None:
    bank = make_bank()
    with pytest.raises(BoardUnavailable):
        await bank.unlock(REF0)
    with pytest.raises(BoardUnavailable):
        await bank.read_doors()


@pytest.mark.parametrize(
    ("pulse_ms", "max_pulse_ms"), [(2001, 2000), (0, 2000), (-5, 2000), (10, 0)]
)
def test_bad_pulse_is_refused(pulse_ms: int, max_pulse_ms: int) -> None:
    with pytest.raises(ValueError, match="pulse_ms"):
        GpioLockBank(BUS, CHANNELS, pulse_ms=pulse_ms, max_pulse_ms=max_pulse_ms)


@pytest.mark.parametrize(
    "channels",
    [
        [],
        [GpioChannel(0, 17, 5), GpioChannel(0, 27, 6)],  # channel twice
        [GpioChannel(0, 17, 5), GpioChannel(1, 27, 17)],  # pin twice
        [GpioChannel(0, 17, 17)],  # relay == sensor
    ],
)
def test_bad_wiring_is_refused(channels: list[GpioChannel]) -> None:
    with pytest.raises(ValueError, match="gpio bus"):
        GpioLockBank(BUS, channels, pulse_ms=500, max_pulse_ms=2000)


async def test_pin_in_use_gives_board_unavailable_and_releases_the_rest(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory
) -> None:
    first = make_bank()
    await first.start()
    second = make_bank()
    with pytest.raises(BoardUnavailable):
        await second.start()
    await first.close()
    await second.start()  # nothing of the failed attempt is still held
    assert all(not factory.pin(c.relay_pin).state for c in CHANNELS)


@pytest.mark.parametrize(
    ("open_high", "level_high", "expected"),
    [
        (True, True, DoorState.OPEN),
        (True, False, DoorState.SHUT),
        (False, True, DoorState.SHUT),
        (False, False, DoorState.OPEN),
    ],
)
async def test_door_sensor_polarity(
    make_bank: Callable[..., GpioLockBank],
    factory: MockFactory,
    open_high: bool,
    level_high: bool,
    expected: DoorState,
) -> None:
    bank = make_bank(sensor_open_high=open_high)
    await bank.start()
    for chan in CHANNELS:
        pin = factory.pin(chan.sensor_pin)
        pin.drive_high() if level_high else pin.drive_low()
    assert await bank.read_doors() == {REF0: expected, REF1: expected, REF2: expected}


async def test_pull_resistors(make_bank: Callable[..., GpioLockBank], factory: MockFactory) -> None:
    bank = make_bank(pull_up=True, sensor_open_high=True, debounce_ms=0)
    await bank.start()
    # Nothing pulls the pin down: the pull-up keeps it high, the door reads open.
    assert (await bank.read_doors())[REF1] is DoorState.OPEN
    factory.pin(6).drive_low()  # reed switch closed to ground
    assert (await bank.read_doors())[REF1] is DoorState.SHUT
    await bank.close()

    bank = make_bank(pull_up=False, sensor_open_high=False)
    await bank.start()
    assert factory.pin(5).pull == "down"
    assert (await bank.read_doors())[REF0] is DoorState.OPEN


async def test_debounce_ignores_a_short_flap_and_accepts_a_stable_change(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory, clock: FakeClock
) -> None:
    bank = make_bank(debounce_ms=30)
    await bank.start()
    sensor = factory.pin(5)

    start = clock.monotonic()

    async def read_at(t_ms: float) -> DoorState:
        clock.mono = start + t_ms / 1000  # t_ms after the first read
        return (await bank.read_doors())[REF0]

    sensor.drive_low()
    assert await read_at(0) is DoorState.SHUT  # first read is taken at once

    # A 20 ms flap open: never reported.
    sensor.drive_high()
    assert await read_at(5) is DoorState.SHUT
    assert await read_at(15) is DoorState.SHUT
    sensor.drive_low()
    assert await read_at(25) is DoorState.SHUT
    # The flap's start must not count towards a later change.
    sensor.drive_high()
    assert await read_at(40) is DoorState.SHUT
    assert await read_at(60) is DoorState.SHUT  # 20 ms stable: not yet
    assert await read_at(71) is DoorState.OPEN  # 31 ms stable: accepted
    assert await read_at(72) is DoorState.OPEN

    # And back: shut is debounced the same way.
    sensor.drive_low()
    assert await read_at(80) is DoorState.OPEN  # first sighting starts the timer
    assert await read_at(100) is DoorState.OPEN
    assert await read_at(111) is DoorState.SHUT


async def test_debounce_is_per_channel(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory, clock: FakeClock
) -> None:
    bank = make_bank(debounce_ms=30)
    await bank.start()
    for chan in CHANNELS:
        factory.pin(chan.sensor_pin).drive_low()
    assert set((await bank.read_doors()).values()) == {DoorState.SHUT}

    factory.pin(6).drive_high()
    clock.elapse(0.010)
    await bank.read_doors()
    factory.pin(13).drive_high()
    clock.elapse(0.025)  # channel 1 has been open 25 ms, channel 2 for 0 ms
    shut, open_ = DoorState.SHUT, DoorState.OPEN
    assert await bank.read_doors() == {REF0: shut, REF1: shut, REF2: shut}
    clock.elapse(0.010)  # 35 ms and 10 ms
    assert await bank.read_doors() == {REF0: shut, REF1: open_, REF2: shut}


async def test_failed_read_gives_unknown_and_is_counted(
    make_bank: Callable[..., GpioLockBank],
    factory: MockFactory,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="firmware_bridge.gpio")
    bank = make_bank(debounce_ms=30)
    await bank.start()
    factory.pin(6).drive_low()
    assert (await bank.read_doors())[REF1] is DoorState.SHUT

    factory.pin(6).fail = True
    for _ in range(3):
        clock.elapse(0.1)
        doors = await bank.read_doors()
        assert doors[REF1] is DoorState.UNKNOWN
        assert doors[REF0] is DoorState.OPEN  # the other doors still read
    assert bank.describe()[0].counters["read_errors"] == 3
    outage_logs = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(outage_logs) == 1  # an outage is logged once, not per poll

    factory.pin(6).fail = False
    clock.elapse(0.1)
    assert (await bank.read_doors())[REF1] is DoorState.SHUT
    assert any("reads again" in r.getMessage() for r in caplog.records)
    assert bank.describe()[0].counters["read_errors"] == 3


@pytest.mark.parametrize("active_high", [True, False])
async def test_close_leaves_outputs_off_and_is_idempotent(
    make_bank: Callable[..., GpioLockBank], factory: MockFactory, active_high: bool
) -> None:
    bank = make_bank(relay_active_high=active_high, pulse_ms=1000, max_pulse_ms=1000)
    await bank.start()
    await bank.unlock(REF0)
    await bank.unlock(REF2)
    await wait_for_state(factory.pin(22), active_high)

    def all_off() -> bool:
        return all(bool(factory.pin(c.relay_pin).state) is not active_high for c in CHANNELS)

    await bank.close()  # mid-pulse
    assert all_off()
    await asyncio.sleep(0.05)
    assert all_off()
    await bank.close()
    assert all_off()
    with pytest.raises(BoardUnavailable):
        await bank.unlock(REF0)


async def test_describe(make_bank: Callable[..., GpioLockBank]) -> None:
    bank = make_bank(pulse_ms=50)
    await bank.start()
    await bank.unlock(REF0)
    [info] = bank.describe()
    assert (info.bus, info.unit, info.kind, info.channels, info.online) == (BUS, 1, "gpio", 3, True)
    assert dict(info.counters) == {"pulses": 1, "read_errors": 0}
