"""gpio `presence_pins`: optional, one per relay pin, no pin shared; and how the bank gets them."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_bridge.bank import ChannelRef
from kiosk.config import load_config
from kiosk.wiring import build_lock_bank


def test_presence_pins_load_and_reach_the_gpio_bank(write, gpio_doc):
    gpio_doc["bus"][0]["presence_pins"] = [24, 25, 8, 7]
    config = load_config(write(gpio_doc))
    assert config.buses[0].presence_pins == (24, 25, 8, 7)
    factory = MockFactory()
    bank = build_lock_bank(config, pin_factory=factory)
    assert [b.presence_sensors for b in bank.describe()] == [4]
    factory.reset()


def test_without_presence_pins_there_are_no_sensors(write, gpio_doc):
    config = load_config(write(gpio_doc))
    assert config.buses[0].presence_pins == ()
    bank = build_lock_bank(config, pin_factory=MockFactory())
    assert [b.presence_sensors for b in bank.describe()] == [0]


async def test_the_wired_bank_reads_them(write, gpio_doc):
    gpio_doc["bus"][0]["presence_pins"] = [24, 25, 8, 7]
    factory = MockFactory()
    bank = build_lock_bank(load_config(write(gpio_doc)), pin_factory=factory)
    await bank.start()
    try:
        factory.pin(8).drive_low()
        await bank.read_doors()
        assert bank.presence()[ChannelRef("pi", 1, 2)] is True  # type: ignore[attr-defined]
        assert bank.presence()[ChannelRef("pi", 1, 0)] is False  # type: ignore[attr-defined]
    finally:
        await bank.close()
        factory.reset()


@pytest.mark.parametrize(
    ("pins", "key", "reason"),
    [
        (
            [24, 25, 8],
            "bus[0].presence_pins",
            "must list one pin per relay pin (4), got 3 (or leave it out: no presence sensors)",
        ),
        (
            [24, 25, 8, 17],
            "bus[0].presence_pins[3]",
            "pin 17 is already used by bus[0].sensor_pins[0]",
        ),
        ([24, 25, 8, 30], "bus[0].presence_pins[3]", "must be an integer from 0 to 27, got 30"),
    ],
)
def test_bad_presence_pins_are_refused_in_one_line(write, gpio_doc, refused, pins, key, reason):
    gpio_doc["bus"][0]["presence_pins"] = pins
    err = refused(write(gpio_doc))
    assert (err.key, err.reason) == (key, reason)


def test_presence_pins_only_on_a_gpio_bus(write, doc, refused):
    doc["bus"][0]["presence_pins"] = [24]
    err = refused(write(doc))
    assert err.key == "bus[0].presence_pins"
