"""The GPIO door simulator answers every pulse, even one that began and ended between two looks."""

from __future__ import annotations

from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory

from firmware_bridge.gpio_sim import GpioDoorSim

RELAY, SENSOR = 17, 27


def _bank(factory: MockFactory) -> tuple[GpioDoorSim, OutputDevice]:
    relay = OutputDevice(RELAY, pin_factory=factory)
    factory.pin(SENSOR)  # the sensor pin exists; the sim drives it
    return GpioDoorSim(factory, {"A-1": (RELAY, SENSOR)}), relay


def test_a_pulse_over_before_the_next_look_still_opens_the_door():
    factory = MockFactory()
    sim, relay = _bank(factory)
    sim.shut_all()
    sim.tick()
    relay.on()  # gpiozero's thread ends a pulse on its own: a busy loop may look only after
    relay.off()
    assert not sim.is_open("A-1")
    sim.tick()
    assert sim.is_open("A-1") and sim.pulses["A-1"] == 1


def test_each_pulse_is_counted_once_and_a_cleared_record_is_followed():
    factory = MockFactory()
    sim, relay = _bank(factory)
    sim.tick()
    for _ in range(2):
        relay.on()
        relay.off()
    sim.tick()
    sim.tick()  # nothing new: no more pulses
    assert sim.pulses["A-1"] == 2
    factory.pin(RELAY).clear_states()  # tests clear the record: the sim reads the new one
    sim.close("A-1")
    relay.on()
    sim.tick()
    assert sim.pulses["A-1"] == 3 and sim.is_open("A-1")


def test_a_jammed_door_counts_the_pulse_and_stays_shut():
    factory = MockFactory()
    sim, relay = _bank(factory)
    sim.jammed.add("A-1")
    sim.tick()
    relay.on()
    relay.off()
    sim.tick()
    assert sim.pulses["A-1"] == 1 and not sim.is_open("A-1")
