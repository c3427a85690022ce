"""The shipped config files load, and every key the loader accepts is documented in kiosk.toml."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kiosk.config import KioskConfig, PolicyConfig, load_config
from kiosk.config.schema import SECTIONS
from kiosk.domain.sizes import Size

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
KIOSK_TOML = CONFIG_DIR / "kiosk.toml"
SHIPPED = [KIOSK_TOML, *sorted((CONFIG_DIR / "examples").glob("*.toml"))]

_HEADER = re.compile(r"^\[\[?([a-z_]+)\]\]?\s*$")
_KEY_LINE = re.compile(r"^#?\s*([a-z_]+)\s*=")


def documented_keys(text: str) -> dict[str, set[str]]:
    """Section name -> keys shown as `key = value` lines (set or commented out) below it."""
    out: dict[str, set[str]] = {}
    section = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            section = header.group(1)
            out.setdefault(section, set())
        elif section is not None and (key := _KEY_LINE.match(line)):
            out[section].add(key.group(1))
    return out


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    assert isinstance(load_config(path), KioskConfig)


def test_examples_are_there():
    assert {p.name for p in SHIPPED} == {
        "kiosk.toml",
        "gpio.toml",
        "simulated.toml",
        "kerong-cu.toml",
    }


def test_default_config_is_the_design_example():
    config = load_config(KIOSK_TOML)
    assert config.site.id == "demo-01"
    assert config.ledger.path == Path("/var/lib/kiosk/ledger.db")
    assert config.keys.site_code_key_file == Path("/etc/kiosk/site-code.key")
    assert config.api.socket == Path("/run/kiosk/kiosk.sock")
    (bus,) = config.buses
    assert (bus.name, bus.kind, bus.device, bus.baudrate) == (
        "rs485",
        "modbus-rtu",
        "/dev/ttyUSB0",
        115200,
    )
    (board,) = config.boards
    assert (board.bus, board.unit, board.profile, board.channels) == ("rs485", 1, "kiosk-v1", 16)
    assert [lk.label for lk in config.lockers] == [f"A-{n}" for n in range(1, 17)]
    assert [lk.channel for lk in config.lockers] == list(range(16))
    assert {lk.size for lk in config.lockers} == set(Size)
    assert config.mqtt is not None and config.mqtt.host == "broker.example"
    # [policy] lists every key at its default.
    assert config.policy == PolicyConfig()


def test_gpio_example_is_a_small_pi_bank():
    config = load_config(CONFIG_DIR / "examples" / "gpio.toml")
    assert [b.kind for b in config.buses] == ["gpio"]
    assert len(config.lockers) == 4 and config.boards[0].channels == 4


def test_simulated_example_has_two_units():
    config = load_config(CONFIG_DIR / "examples" / "simulated.toml")
    assert [b.kind for b in config.buses] == ["simulated"]
    assert sorted(b.unit for b in config.boards) == [1, 2]


def test_kerong_example_is_two_cu16_boards_on_one_line():
    config = load_config(CONFIG_DIR / "examples" / "kerong-cu.toml")
    assert [(b.kind, b.baudrate) for b in config.buses] == [("kerong-cu", 19200)]
    assert [(b.unit, b.profile, b.ir_sensors) for b in config.boards] == [
        (0, "kerong-cu", True),
        (1, "kerong-cu", False),
    ]


def test_every_accepted_key_is_documented_in_kiosk_toml():
    documented = documented_keys(KIOSK_TOML.read_text(encoding="utf-8"))
    missing = [
        f"{s.name}.{name}"
        for s in SECTIONS
        for name in s.key_names()
        if name not in documented.get(s.name, set())
    ]
    assert missing == []


def test_kiosk_toml_documents_no_key_the_loader_refuses():
    documented = documented_keys(KIOSK_TOML.read_text(encoding="utf-8"))
    accepted = {s.name: set(s.key_names()) for s in SECTIONS}
    assert set(documented) == set(accepted)
    stale = [f"{name}.{k}" for name, keys in documented.items() for k in keys - accepted[name]]
    assert stale == []


def test_every_dataclass_field_is_reachable_from_a_key():
    for section in SECTIONS:
        fields = {f.name for f in dataclasses.fields(section.cls)}
        assert {k.field for k in section.keys} == fields, section.name
    top = {f.name for f in dataclasses.fields(KioskConfig)}
    assert top == {s.field for s in SECTIONS} | {"source"}


def test_fields_without_a_default_are_required_keys():
    for section in SECTIONS:
        no_default = {
            f.name
            for f in dataclasses.fields(section.cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        required = {k.field for k in section.keys if k.required and not k.kinds}
        assert no_default <= required, section.name
