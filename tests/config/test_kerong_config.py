"""Config of Kerong KR-CU boards: a kerong-cu bus, its boards (address 0..15) and their rules."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.config import load_config

Doc = dict[str, Any]


def _kerong(doc: Doc, **board: Any) -> Doc:
    doc["bus"] = [{"name": "cu", "kind": "kerong-cu", "port": "/dev/ttyUSB0"}]
    doc["board"] = [{"bus": "cu", "unit": 0, "profile": "kerong-cu", "channels": 4, **board}]
    for locker in doc["locker"]:
        locker.update(bus="cu", unit=0)
    return doc


def test_a_kerong_cu_bus_defaults_to_the_boards_19200_baud(write, doc):
    config = load_config(write(_kerong(doc, ir_sensors=True)))
    bus, board = config.buses[0], config.boards[0]
    assert (bus.kind, bus.device, bus.baudrate) == ("kerong-cu", "/dev/ttyUSB0", 19200)
    assert (board.unit, board.profile, board.ir_sensors) == (0, "kerong-cu", True)
    doc["bus"][0]["baudrate"] = 9600
    assert load_config(write(doc)).buses[0].baudrate == 9600


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (
            lambda d: d["board"][0].update(profile="kiosk-v1"),
            "board[0].profile",
            "must be 'kerong-cu' on a kerong-cu bus, got 'kiosk-v1'",
        ),
        (
            lambda d: d["board"][0].update(unit=16),
            "board[0].unit",
            "must be the board's address switch, 0 to 15, on a kerong-cu bus, got 16",
        ),
        (
            lambda d: d["board"][0].update(channels=17),
            "board[0].channels",
            "a kerong-cu board has 1 to 16 locks, got 17",
        ),
        (
            lambda d: d["bus"][0].pop("port"),
            "bus[0].port",
            "missing (required for a kerong-cu bus)",
        ),
    ],
)
def test_kerong_rules(write, doc, refused, mutate, key, reason):
    mutate(_kerong(doc))
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)


@pytest.mark.parametrize(
    ("board", "key", "reason"),
    [
        (
            {"profile": "kerong-cu"},
            "board[0].profile",
            "'kerong-cu' is only for a board on a kerong-cu bus; bus 'rs485' is modbus-rtu",
        ),
        (
            {"unit": 0},
            "board[0].unit",
            "must be 1 to 247 on a modbus-rtu bus (0 is the Modbus broadcast address)",
        ),
        (
            {"ir_sensors": True},
            "board[0].ir_sensors",
            "only a kerong-cu board has it (a Modbus board says its own presence sensors; "
            "a gpio bus lists presence_pins)",
        ),
    ],
)
def test_kerong_keys_stay_off_modbus_boards(write, doc, refused, board, key, reason):
    doc["board"][0].update(board)
    if "unit" in board:
        for locker in doc["locker"]:
            locker["unit"] = board["unit"]
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)
