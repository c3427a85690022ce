"""GpioLockBank: solenoid relays and reed-switch door sensors wired straight to GPIO pins."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

from firmware_bridge.bank import (
    BoardInfo,
    BoardUnavailable,
    BridgeError,
    ChannelRef,
    DoorState,
    Presence,
    Units,
    UnknownChannel,
)

log = logging.getLogger(__name__)

#: A GPIO bank is a single "board": every ref on a gpio bus has unit 1.
GPIO_UNIT = 1
#: How long after a pulse should have ended its relay may still be on before it is called stuck (s).
PULSE_END_SLACK_S = 0.5


@dataclass(frozen=True)
class GpioChannel:
    """One lock channel: the BCM pin driving its relay and the BCM pin of its door sensor.

    `presence_pin`: the BCM pin of its parcel-presence sensor, if one is fitted.
    The pin has the pull-up; the sensor's open-collector output pulls it low
    while it sees something in the compartment (low = occupied, high = empty).
    """

    channel: int
    relay_pin: int
    sensor_pin: int
    presence_pin: int | None = None


@dataclass
class _Debounce:
    """Debounce state of one sensor; levels are raw pin levels (True = high).

    `accepted` is None until the first successful read, which is taken at once.
    A different raw level becomes `pending` and is accepted once it has been
    seen on every read for at least the debounce time.
    """

    accepted: bool | None = None
    pending: bool | None = None
    pending_since: float = 0.0
    failing: bool = False

    def feed(self, raw: bool, now: float, debounce_s: float) -> bool:
        if self.accepted is None or raw == self.accepted:
            self.accepted = raw
            self.pending = None
            return raw
        if self.pending != raw:
            self.pending = raw
            self.pending_since = now
        if now - self.pending_since >= debounce_s:
            self.accepted = raw
            self.pending = None
        return self.accepted


class GpioLockBank:
    """LockBank on gpiozero: one DigitalOutputDevice per relay, one DigitalInputDevice per sensor.

    Safety invariants:
    * every relay is driven off when claimed (`start`) and when released (`close`);
    * a pulse is timed by gpiozero's own blink thread, not by asyncio, so a
      stalled event loop cannot leave a solenoid energised; the on-time is never
      longer than `max_pulse_ms`, and an unlock while the channel's pulse is still
      running does not extend it;
    * a sensor read that fails reports UNKNOWN, never a guessed OPEN or SHUT.

    Debounce is done here, on the injected `clock` (seconds, monotonic), because
    gpiozero's mock pins ignore `bounce_time` and the bank is polled anyway.
    """

    def __init__(
        self,
        bus: str,
        channels: Iterable[GpioChannel],
        pulse_ms: int,
        max_pulse_ms: int,
        *,
        relay_active_high: bool = True,
        sensor_open_high: bool = True,
        pull_up: bool = True,
        debounce_ms: int = 30,
        pin_factory: Factory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Check the wiring; claims no pin until `start`.

        pulse_ms: unlock pulse length; 0 < pulse_ms <= max_pulse_ms (ms).
        sensor_open_high: True if a high sensor level means the door is open
            (reed switch to ground with the pull-up: a shut door reads low).
        pin_factory: gpiozero pin factory; None = gpiozero's default, which
            honours GPIOZERO_PIN_FACTORY.
        Raises ValueError on a bad pulse, a negative debounce, no channels, or
        a channel or pin used twice.
        """
        chans = list(channels)
        if max_pulse_ms <= 0:
            raise ValueError(f"gpio bus {bus!r}: max_pulse_ms must be > 0, got {max_pulse_ms}")
        if not 0 < pulse_ms <= max_pulse_ms:
            raise ValueError(
                f"gpio bus {bus!r}: pulse_ms must be > 0 and <= max_pulse_ms "
                f"({max_pulse_ms}), got {pulse_ms}"
            )
        if debounce_ms < 0:
            raise ValueError(f"gpio bus {bus!r}: debounce_ms must be >= 0, got {debounce_ms}")
        if not chans:
            raise ValueError(f"gpio bus {bus!r}: no channels")
        numbers = [c.channel for c in chans]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"gpio bus {bus!r}: a channel number is used twice: {numbers}")
        pins = [p for c in chans for p in (c.relay_pin, c.sensor_pin)]
        pins += [c.presence_pin for c in chans if c.presence_pin is not None]
        if len(set(pins)) != len(pins):
            raise ValueError(f"gpio bus {bus!r}: a GPIO pin is used twice: {pins}")

        self._bus = bus
        self._channels = {ChannelRef(bus, GPIO_UNIT, c.channel): c for c in chans}
        self._pulse_ms = pulse_ms
        self._max_pulse_ms = max_pulse_ms
        self._relay_active_high = relay_active_high
        self._sensor_open_high = sensor_open_high
        self._pull_up = pull_up
        self._debounce_s = debounce_ms / 1000
        self._pin_factory = pin_factory
        self._clock = clock
        self._relays: dict[ChannelRef, DigitalOutputDevice] = {}
        self._sensors: dict[ChannelRef, DigitalInputDevice] = {}
        self._debounce: dict[ChannelRef, _Debounce] = {}
        self._presence_inputs: dict[ChannelRef, DigitalInputDevice] = {}
        self._presence: dict[ChannelRef, bool | None] = {}
        self._started = False
        self._pulses = 0
        self._read_errors = 0

    async def start(self) -> None:
        """Claim every pin, relays off first; a second call while started does nothing."""
        if self._started:
            return
        try:
            for ref, chan in sorted(self._channels.items()):
                self._relays[ref] = DigitalOutputDevice(
                    chan.relay_pin,
                    active_high=self._relay_active_high,
                    initial_value=False,
                    pin_factory=self._pin_factory,
                )
            for ref, chan in sorted(self._channels.items()):
                self._sensors[ref] = DigitalInputDevice(
                    chan.sensor_pin,
                    pull_up=self._pull_up,
                    bounce_time=None,
                    pin_factory=self._pin_factory,
                )
            for ref, chan in sorted(self._channels.items()):
                if chan.presence_pin is not None:
                    self._presence_inputs[ref] = DigitalInputDevice(
                        chan.presence_pin,
                        pull_up=True,
                        bounce_time=None,
                        pin_factory=self._pin_factory,
                    )
        except Exception as exc:
            self._release()
            raise BoardUnavailable(
                f"gpio bus {self._bus!r}: cannot claim the pins: {exc}",
                fix="check relay_pins/sensor_pins/presence_pins, pin_factory, and that no other "
                "process holds the pins",
            ) from exc
        self._debounce = {ref: _Debounce() for ref in self._channels}
        self._started = True

    async def close(self) -> None:
        """Every relay off, every pin released. Safe to call twice."""
        if not self._started and not self._relays and not self._sensors:
            return
        self._started = False
        first_error = self._release()
        if first_error is not None:
            raise BridgeError(
                f"gpio bus {self._bus!r}: error while releasing the pins: {first_error}",
                fix="check the relays are off",
            ) from first_error

    async def unlock(self, ref: ChannelRef) -> None:
        """Start one pulse of `ref`'s relay and return at once; gpiozero's thread ends it."""
        if ref not in self._channels:
            raise UnknownChannel(
                f"{ref} is not a channel of gpio bus {self._bus!r}",
                fix=f"configured channels: {', '.join(str(r) for r in sorted(self._channels))}",
            )
        relay = self._relays.get(ref)
        if not self._started or relay is None:
            raise BoardUnavailable(f"gpio bus {self._bus!r} is not started", fix="call start()")
        on_time_s = min(self._pulse_ms, self._max_pulse_ms) / 1000
        if relay.is_active:
            # A pulse is still running. Extending it would keep the solenoid
            # energised longer than max_pulse_ms in one go; ignoring the request
            # would let a second unlock (the next person, a retry) pass unseen.
            # So wait for it to end, let the coil rest as long, then pulse anew.
            # gpiozero's thread ends the pulse, and a busy machine can hold that thread
            # back: the relay is called stuck only PULSE_END_SLACK_S after the pulse's end.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + on_time_s + PULSE_END_SLACK_S
            while relay.is_active:
                if loop.time() > deadline:
                    raise BoardUnavailable(
                        f"{ref}: relay still on after its pulse", fix="check the relay"
                    )
                await asyncio.sleep(0.005)
            await asyncio.sleep(min(on_time_s, 0.1))
        relay.blink(on_time=on_time_s, off_time=0, n=1, background=True)
        self._pulses += 1

    async def read_doors(self, units: Units | None = None) -> dict[ChannelRef, DoorState]:
        """One debounced reading of every door sensor; a failed read gives UNKNOWN.

        The pins are cheap to read, so `units` (this bank's one board, or not)
        only decides whether anything is read at all.
        """
        if units is not None and (self._bus, GPIO_UNIT) not in units:
            return {}
        if not self._started:
            raise BoardUnavailable(f"gpio bus {self._bus!r} is not started", fix="call start()")
        now = self._clock()
        doors: dict[ChannelRef, DoorState] = {}
        for ref, sensor in sorted(self._sensors.items()):
            doors[ref] = self._read_one(ref, sensor, now)
        for ref, device in self._presence_inputs.items():
            try:
                self._presence[ref] = not bool(device.pin.state)  # pulled low = occupied
            except Exception:
                self._read_errors += 1
                self._presence[ref] = None
        return doors

    def presence(self) -> Presence:
        """Each channel's presence at the last `read_doors`; None where no presence pin."""
        return {ref: self._presence.get(ref) for ref in sorted(self._channels)}

    def describe(self) -> list[BoardInfo]:
        """The one GPIO 'board' of this bus, with its pulse and read-error counters."""
        return [
            BoardInfo(
                self._bus,
                GPIO_UNIT,
                "gpio",
                len(self._channels),
                online=True,
                counters={"pulses": self._pulses, "read_errors": self._read_errors},
                presence_sensors=sum(c.presence_pin is not None for c in self._channels.values()),
            )
        ]

    def _read_one(self, ref: ChannelRef, sensor: DigitalInputDevice, now: float) -> DoorState:
        state = self._debounce[ref]
        try:
            raw = bool(sensor.pin.state)
        except Exception as exc:
            self._read_errors += 1
            state.pending = None  # a failed read breaks "stable across reads"
            if not state.failing:
                state.failing = True
                log.warning("gpio bus %r: door sensor %s cannot be read: %s", self._bus, ref, exc)
            return DoorState.UNKNOWN
        if state.failing:
            state.failing = False
            log.info("gpio bus %r: door sensor %s reads again", self._bus, ref)
        level = state.feed(raw, now, self._debounce_s)
        return DoorState.OPEN if level == self._sensor_open_high else DoorState.SHUT

    def _release(self) -> Exception | None:
        """Turn every relay off and close every device; return the first error, if any.

        Each device is tried even if an earlier one failed, so one bad pin
        cannot leave the other relays energised.
        """
        first_error: Exception | None = None
        for ref, relay in self._relays.items():
            try:
                relay.off()  # stops a running blink, then drives the pin to off
                relay.close()
            except Exception as exc:
                log.error("gpio bus %r: cannot switch off relay %s: %s", self._bus, ref, exc)
                first_error = first_error or exc
        for ref, sensor in [*self._sensors.items(), *self._presence_inputs.items()]:
            try:
                sensor.close()
            except Exception as exc:
                log.error("gpio bus %r: cannot release sensor %s: %s", self._bus, ref, exc)
                first_error = first_error or exc
        self._relays.clear()
        self._sensors.clear()
        self._presence_inputs.clear()
        self._presence.clear()
        return first_error
