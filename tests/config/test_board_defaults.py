"""A board's defaults are the same in the config (BoardConfig) and the driver (BoardSpec).

firmware_bridge imports nothing from kiosk and kiosk.config only kiosk.domain, so
the two dataclasses each name their defaults; kiosk/wiring.py always passes every
config value on. This test keeps the two lists one.
"""

from __future__ import annotations

import dataclasses

from firmware_bridge.modbus.bank import BoardSpec
from kiosk.config.model import BoardConfig


def _defaults(cls: type) -> dict[str, object]:
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


def test_board_config_and_board_spec_have_the_same_fields_and_defaults():
    assert [f.name for f in dataclasses.fields(BoardConfig)] == [
        f.name for f in dataclasses.fields(BoardSpec)
    ]
    assert _defaults(BoardConfig) == _defaults(BoardSpec)
    assert _defaults(BoardConfig)  # the comparison compared something
