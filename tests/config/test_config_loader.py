"""Config loader rules: every error names the file, the exact key path and the reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import (
    ABSOLUTE_MAX_PULSE_MS,
    KioskConfig,
    PolicyConfig,
    load_config,
    parse_config,
)
from kiosk.domain.errors import ConfigError
from kiosk.domain.sizes import Size

Doc = dict[str, Any]


def test_minimal_config_loads_with_dataclass_defaults(write, doc):
    config = load_config(write(doc))
    assert isinstance(config, KioskConfig)
    assert config.site.id == "demo-01" and config.site.lat is None
    assert config.buses[0].device == "/dev/ttyUSB0" and config.buses[0].baudrate == 115200
    assert config.boards[0].pulse_ms == 500 and config.boards[0].profile == "kiosk-v1"
    assert [lk.size for lk in config.lockers] == [Size.S, Size.M, Size.L, Size.S]
    assert config.mqtt is None
    assert config.policy == PolicyConfig()


def test_relative_paths_resolve_against_the_config_folder(write, doc, tmp_path, monkeypatch):
    doc["ledger"]["path"] = "data/ledger.db"
    doc["mqtt"] = {"host": "b", "ca_file": "ca.pem", "cert_file": "/abs/c.pem", "key_file": "k"}
    path = write(doc, "etc/kiosk.toml")
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(path)
    here = tmp_path / "etc"
    assert config.ledger.path == here / "data" / "ledger.db"
    assert config.keys.site_code_key_file == here / "site.key"
    assert config.api.socket == here / "kiosk.sock"
    assert config.mqtt is not None
    assert config.mqtt.ca_file == here / "ca.pem" and config.mqtt.key_file == here / "k"
    assert config.mqtt.cert_file == Path("/abs/c.pem")
    assert config.source == path


def test_config_is_frozen(write, doc):
    config = load_config(write(doc))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.site.id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.policy.pickup_days = 99  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lockers = ()  # type: ignore[misc]
    assert isinstance(config.lockers, tuple) and isinstance(config.buses, tuple)


def test_parse_config_takes_an_already_parsed_document(tmp_path, doc):
    config = parse_config(doc, tmp_path / "embedded.toml")
    assert config.ledger.path == tmp_path / "ledger.db"
    doc["site"]["id"] = "bad id"
    with pytest.raises(ConfigError, match=r"embedded.toml: site\.id: "):
        parse_config(doc, tmp_path / "embedded.toml")


def test_missing_file(tmp_path, refused):
    err = refused(tmp_path / "nope.toml")
    assert (err.key, err.reason) == ("(file)", "file not found")


def test_invalid_toml_names_line_and_column(write, refused):
    err = refused(write('[site]\nid = "demo-01"\nname = \n'))
    assert err.key == "(file)"
    assert err.reason.startswith("not valid TOML: ") and "line 3" in err.reason
    assert "column" in err.reason


def test_invalid_utf8(tmp_path, refused):
    path = tmp_path / "kiosk.toml"
    path.write_bytes(b'[site]\nid = "\xff"\n')
    assert refused(path).key == "(file)"


@pytest.mark.parametrize(
    ("where", "key", "message"),
    [
        (
            lambda d: d["locker"][3],
            "colour",
            "locker[3].colour: unknown key (did you mean 'column'?)",
        ),
        (lambda d: d["site"], "nmae", "site.nmae: unknown key (did you mean 'name'?)"),
        (lambda d: d["bus"][0], "baud", "bus[0].baud: unknown key (did you mean 'baudrate'?)"),
        (lambda d: d["board"][0], "zzz", "board[0].zzz: unknown key"),
        (
            lambda d: d.setdefault("policy", {}),
            "pickup_day",
            "policy.pickup_day: unknown key (did you mean 'pickup_days'?)",
        ),
        (lambda d: d, "lockers", "lockers: unknown key (did you mean 'locker'?)"),
        (lambda d: d, "xyz", "xyz: unknown key"),
    ],
)
def test_unknown_keys_are_errors_with_a_hint(write, doc, refused, where, key, message):
    where(doc)[key] = 1
    path = write(doc)
    assert str(refused(path)) == f"{path}: {message}"


def test_key_of_another_bus_kind_is_an_error(write, doc, refused):
    doc["bus"][0]["host"] = "10.0.0.5"
    err = refused(write(doc))
    assert (err.key, err.reason) == (
        "bus[0].host",
        "only for a modbus-tcp bus, not a modbus-rtu one",
    )


def _set(path: str, value: object) -> Callable[[Doc], None]:
    """A mutator setting doc[a][0][b] for path "a.0.b"."""

    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value

    return mutate


BAD_VALUES = [
    ("board.0.unit", 300, "board[0].unit", "must be an integer from 1 to 247, got 300"),
    ("board.0.unit", "1", "board[0].unit", "must be an integer from 1 to 247, got string '1'"),
    ("board.0.unit", True, "board[0].unit", "must be an integer from 1 to 247, got boolean True"),
    ("board.0.channels", 65, "board[0].channels", "must be an integer from 1 to 64, got 65"),
    ("board.0.channels", 0, "board[0].channels", "must be an integer from 1 to 64, got 0"),
    ("board.0.pulse_ms", 20, "board[0].pulse_ms", None),
    ("board.0.max_pulse_ms", ABSOLUTE_MAX_PULSE_MS + 1, "board[0].max_pulse_ms", None),
    ("board.0.profile", "kiosk-v2", "board[0].profile", None),
    ("site.id", "demo 01", "site.id", None),
    ("site.id", "x" * 65, "site.id", None),
    ("site.id", "", "site.id", None),
    ("site.id", "a/b", "site.id", None),
    ("site.lat", 91, "site.lat", "must be a number from -90 to 90, got 91"),
    ("site.lon", -180.5, "site.lon", "must be a number from -180 to 180, got -180.5"),
    ("site.lat", "52.5", "site.lat", None),
    ("site.name", 5, "site.name", None),
    ("bus.0.kind", "rtu", "bus[0].kind", None),
    ("bus.0.name", "rs 485", "bus[0].name", None),
    ("bus.0.port", 502, "bus[0].port", None),
    ("bus.0.port", "", "bus[0].port", None),
    ("bus.0.baudrate", 100000, "bus[0].baudrate", None),
    ("bus.0.timeout_s", 0, "bus[0].timeout_s", None),
    ("bus.0.poll_ms", 5, "bus[0].poll_ms", None),
    ("locker.0.size", "XL", "locker[0].size", "must be S, M or L, got 'XL'"),
    ("locker.0.size", 1, "locker[0].size", "must be S, M or L, got integer 1"),
    ("locker.0.label", "A 1", "locker[0].label", None),
    ("locker.0.label", "A_1", "locker[0].label", None),
    ("locker.0.label", "A" * 17, "locker[0].label", None),
    ("locker.2.channel", -1, "locker[2].channel", None),
    ("ledger.path", "", "ledger.path", None),
    ("api.socket", 5, "api.socket", None),
    ("policy.code_length", 5, "policy.code_length", "must be an integer from 6 to 10, got 5"),
    ("policy.code_length", 11, "policy.code_length", None),
    ("policy.pickup_days", 31, "policy.pickup_days", None),
    ("policy.pickup_days", 0, "policy.pickup_days", None),
    ("policy.hold_minutes", 121, "policy.hold_minutes", None),
    ("policy.max_failures", 21, "policy.max_failures", None),
    ("policy.daily_failure_budget", 10001, "policy.daily_failure_budget", None),
    ("policy.backoff_first_s", 0, "policy.backoff_first_s", None),
    ("policy.door_open_timeout_s", "5", "policy.door_open_timeout_s", None),
    ("policy.unlock_retries", -1, "policy.unlock_retries", None),
    ("mqtt.port", 0, "mqtt.port", None),
    ("mqtt.prefix", "lockers/#", "mqtt.prefix", None),
    ("mqtt.prefix", "/lockers", "mqtt.prefix", None),
    ("mqtt.keepalive_s", 1, "mqtt.keepalive_s", None),
]


@pytest.mark.parametrize(("path", "value", "key", "reason"), BAD_VALUES)
def test_bad_values_are_refused(write, doc, refused, path, value, key, reason):
    if path.startswith("mqtt."):
        doc["mqtt"] = {"host": "broker.example"}
    _set(path, value)(doc)
    err = refused(write(doc))
    assert err.key == key
    if reason is not None:
        assert err.reason == reason
    else:
        assert err.reason.startswith("must be ") and "got " in err.reason


def test_pulse_above_the_hard_cap_is_refused_naming_the_cap(write, doc, refused):
    doc["board"][0].update(max_pulse_ms=8000, pulse_ms=500)
    err = refused(write(doc))
    assert err.key == "board[0].max_pulse_ms"
    assert "ABSOLUTE_MAX_PULSE_MS" in err.reason and err.reason.endswith("got 8000")


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (
            _set("board.0.pulse_ms", 1500),
            "board[0].pulse_ms",
            "must not exceed max_pulse_ms (1000), got 1500",
        ),
        (
            _set("policy.backoff_first_s", 1000),
            "policy.backoff_first_s",
            "must not exceed backoff_max_s (900), got 1000",
        ),
    ],
)
def test_pairs_that_must_agree(write, doc, refused, mutate, key, reason):
    doc["board"][0]["max_pulse_ms"] = 1000
    mutate(doc)
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (lambda d: d["site"].pop("id"), "site.id", "missing (required)"),
        (lambda d: d["ledger"].pop("path"), "ledger.path", "missing (required)"),
        (
            lambda d: d["keys"].pop("site_code_key_file"),
            "keys.site_code_key_file",
            "missing (required)",
        ),
        (lambda d: d["api"].pop("socket"), "api.socket", "missing (required)"),
        (lambda d: d.pop("ledger"), "ledger", "required table [ledger] is missing"),
        (lambda d: d.pop("site"), "site", "required table [site] is missing"),
        (lambda d: d.pop("bus"), "bus", "at least one [[bus]] is required"),
        (lambda d: d.pop("board"), "board", "at least one [[board]] is required"),
        (lambda d: d.pop("locker"), "locker", "at least one [[locker]] is required"),
        (lambda d: d.update(locker=[]), "locker", "at least one [[locker]] is required"),
        (lambda d: d["locker"][1].pop("channel"), "locker[1].channel", "missing (required)"),
        (lambda d: d["bus"][0].pop("kind"), "bus[0].kind", "missing (required)"),
        (
            lambda d: d["bus"][0].pop("port"),
            "bus[0].port",
            "missing (required for a modbus-rtu bus)",
        ),
        (lambda d: d.update(mqtt={"port": 1883}), "mqtt.host", "missing (required)"),
        (lambda d: d.update(site="demo-01"), "site", "must be a table, got string"),
        (
            lambda d: d.update(bus={"name": "x"}),
            "bus",
            "must be an array of tables ([[bus]]), got table",
        ),
        (lambda d: d.update(bus=[1]), "bus[0]", "must be a table, got integer"),
    ],
)
def test_required_keys_and_table_shapes(write, doc, refused, mutate, key, reason):
    mutate(doc)
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)
