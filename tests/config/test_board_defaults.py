"""A board's defaults are written once (firmware_bridge.defaults): the config's [[board]]
(BoardConfig) and the driver's BoardSpec both take them from there."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import firmware_bridge.defaults as board_defaults
from firmware_bridge.modbus.bank import BoardSpec
from kiosk.config.model import BoardConfig

ROOT = Path(__file__).parents[2]


def _defaults(cls: type) -> dict[str, object]:
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


def test_board_config_and_board_spec_have_the_same_fields_and_defaults():
    assert [f.name for f in dataclasses.fields(BoardConfig)] == [
        f.name for f in dataclasses.fields(BoardSpec)
    ]
    assert _defaults(BoardConfig) == _defaults(BoardSpec)
    assert _defaults(BoardConfig)["pulse_ms"] == board_defaults.PULSE_MS


def test_neither_writes_a_default_of_its_own():
    """The four defaults are names of firmware_bridge.defaults in both classes, never a
    literal: a number written in one of them would be a second place."""
    for path, cls in (
        ("kiosk/config/model.py", "BoardConfig"),
        ("firmware_bridge/modbus/bank.py", "BoardSpec"),
    ):
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls]
        fields = {
            stmt.target.id: stmt.value
            for stmt in node.body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
        }
        for name in ("profile", "channels", "pulse_ms", "max_pulse_ms"):
            value = fields[name]
            assert isinstance(value, ast.Attribute), f"{cls}.{name} is written in {path}"
            assert isinstance(value.value, ast.Name) and value.value.id == "board_defaults"
