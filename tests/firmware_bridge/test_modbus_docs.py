"""docs/hardware.md's config examples load, and wire up into Modbus lock banks."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from firmware_bridge.modbus import ModbusLockBank
from kiosk.config import load_config
from kiosk.wiring import build_lock_bank

DOC = Path(__file__).resolve().parents[2] / "docs" / "hardware.md"
EXAMPLES = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_an_example_for_each_modbus_setup() -> None:
    text = "".join(EXAMPLES)
    assert len(EXAMPLES) == 3
    assert 'kind = "modbus-rtu"' in text and 'kind = "modbus-tcp"' in text
    assert 'profile = "waveshare-relay-d"' in text and 'profile = "kiosk-v1"' in text


@pytest.mark.parametrize("example", EXAMPLES, ids=["kiosk-v1-rtu", "waveshare-rtu", "tcp"])
def test_each_config_example_loads_and_builds_a_modbus_bank(tmp_path: Path, example: str) -> None:
    key = tmp_path / "site.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[site]\nid = "doc-01"\n[ledger]\npath = "{tmp_path / "l.db"}"\n'
        f'[keys]\nsite_code_key_file = "{key}"\n[api]\nsocket = "{tmp_path / "k.sock"}"\n' + example
    )
    bank = build_lock_bank(load_config(path))
    modbus = list(bank.banks.values())  # type: ignore[attr-defined]
    assert modbus and all(isinstance(b, ModbusLockBank) for b in modbus)
