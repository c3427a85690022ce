"""Fixtures for the config tests: a small valid document and real TOML files in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import load_config
from kiosk.domain.errors import ConfigError

Doc = dict[str, Any]


def base() -> Doc:
    """A small valid config: one RS-485 bus, one 4-channel board, four lockers."""
    return {
        "site": {"id": "demo-01"},
        "ledger": {"path": "ledger.db"},
        "keys": {"site_code_key_file": "site.key"},
        "api": {"socket": "kiosk.sock"},
        "bus": [{"name": "rs485", "kind": "modbus-rtu", "port": "/dev/ttyUSB0"}],
        "board": [{"bus": "rs485", "unit": 1, "channels": 4}],
        "locker": [
            {
                "label": f"A-{ch + 1}",
                "size": "SML"[ch % 3],
                "bus": "rs485",
                "unit": 1,
                "channel": ch,
            }
            for ch in range(4)
        ],
    }


def gpio() -> Doc:
    doc = base()
    doc["bus"] = [
        {
            "name": "pi",
            "kind": "gpio",
            "relay_pins": [5, 6, 13, 19],
            "sensor_pins": [17, 27, 22, 23],
        }
    ]
    doc["board"] = [{"bus": "pi", "unit": 1, "profile": "gpio", "channels": 4}]
    for locker in doc["locker"]:
        locker["bus"] = "pi"
    return doc


def dumps(doc: Doc) -> str:
    """Just enough TOML for these tests (JSON literals are valid TOML for our values)."""
    scalars = [f"{k} = {json.dumps(v)}" for k, v in doc.items() if not _is_table(v)]
    lines = [*scalars, ""]
    for name, value in doc.items():
        tables = [(f"[{name}]", value)] if isinstance(value, dict) else []
        if isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
            tables = [(f"[[{name}]]", t) for t in value]
        for header, table in tables:
            lines += [header, *(f"{k} = {json.dumps(v)}" for k, v in table.items()), ""]
    return "\n".join(lines)


def _is_table(value: object) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(t, dict) for t in value)
    )


@pytest.fixture
def doc() -> Doc:
    return base()


@pytest.fixture
def gpio_doc() -> Doc:
    return gpio()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def write(doc: Doc | str, name: str = "kiosk.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else dumps(doc), encoding="utf-8")
        return path

    return write


@pytest.fixture
def refused() -> Callable[[Path], ConfigError]:
    """Load a file that must be refused; check the message shape; return the error."""
    return _refused


def _refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.file == str(path)
    assert str(err) == f"{path}: {err.key}: {err.reason}"
    return err
