"""Config rules across tables: unique names, references, GPIO pins, bus kinds, MQTT, key files."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.config import check_config, load_config
from kiosk.domain.errors import ConfigError

Doc = dict[str, Any]


def _locker(label: str, channel: int, bus: str = "rs485", unit: int = 1) -> dict[str, Any]:
    return {"label": label, "size": "M", "bus": bus, "unit": unit, "channel": channel}


CLASHES = [
    (
        lambda d: d["bus"].append({"name": "rs485", "kind": "simulated"}),
        "bus[1].name",
        "duplicate bus name 'rs485' (also bus[0])",
    ),
    (
        lambda d: d["bus"].append({"name": "b2", "kind": "modbus-rtu", "port": "/dev/ttyUSB0"}),
        "bus[1].port",
        "serial device /dev/ttyUSB0 is already used by bus[0]",
    ),
    (
        lambda d: d["board"].append({"bus": "rs485", "unit": 1}),
        "board[1].unit",
        "duplicate unit 1 on bus 'rs485' (also board[0])",
    ),
    (
        lambda d: d["board"].append({"bus": "rs458", "unit": 2}),
        "board[1].bus",
        "no [[bus]] named 'rs458' (did you mean 'rs485'?)",
    ),
    (
        lambda d: d["locker"].append(_locker("B-1", 0, bus="can")),
        "locker[4].bus",
        "no [[bus]] named 'can'",
    ),
    (
        lambda d: d["locker"].append(_locker("B-1", 0, unit=2)),
        "locker[4].unit",
        "no [[board]] with bus 'rs485' and unit 2",
    ),
    (
        lambda d: d["locker"].append(_locker("B-1", 4)),
        "locker[4].channel",
        "must be below the board's channels (4), got 4",
    ),
    (
        lambda d: d["locker"].append(_locker("B-1", 2)),
        "locker[4].channel",
        "channel 2 of bus 'rs485' unit 1 is already used by locker[2] (A-3)",
    ),
    (
        lambda d: d["locker"].append(_locker("A-2", 3)),
        "locker[4].label",
        "duplicate label 'A-2' (also locker[1])",
    ),
    (
        lambda d: d["board"][0].update(sensor_open_high=False),
        "board[0].sensor_open_high",
        "only a waveshare-relay-d board has it (a kiosk-v1 board reads 1 = open; "
        "a gpio bus sets its own sensor_open_high)",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "reason"), CLASHES)
def test_clashes_are_refused(write, doc, refused, mutate, key, reason):
    mutate(doc)
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)


def test_second_board_and_bus_are_fine(write, doc):
    doc["bus"].append({"name": "sim", "kind": "simulated"})
    doc["board"] += [{"bus": "rs485", "unit": 2}, {"bus": "sim", "unit": 1}]
    doc["locker"] += [_locker("B-1", 0, unit=2), _locker("C-1", 0, bus="sim")]
    config = load_config(write(doc))
    assert [(lk.bus, lk.unit, lk.channel) for lk in config.lockers[-2:]] == [
        ("rs485", 2, 0),
        ("sim", 1, 0),
    ]


def test_waveshare_board_takes_its_door_polarity(write, doc):
    doc["board"][0].update(profile="waveshare-relay-d", sensor_open_high=False)
    assert load_config(write(doc)).boards[0].sensor_open_high is False
    del doc["board"][0]["sensor_open_high"]
    assert load_config(write(doc)).boards[0].sensor_open_high is None  # the profile's own


def test_modbus_tcp_bus_maps_port_to_tcp_port(write, doc):
    doc["bus"] = [{"name": "rs485", "kind": "modbus-tcp", "host": "10.0.0.5", "port": 502}]
    bus = load_config(write(doc)).buses[0]
    assert (bus.host, bus.tcp_port, bus.device) == ("10.0.0.5", 502, None)


@pytest.mark.parametrize(
    ("bus", "key", "reason"),
    [
        ({"host": "h"}, "bus[0].port", "missing (required for a modbus-tcp bus)"),
        ({"port": 502}, "bus[0].host", "missing (required for a modbus-tcp bus)"),
        (
            {"host": "h", "port": 70000},
            "bus[0].port",
            "must be an integer from 1 to 65535, got 70000",
        ),
        (
            {"host": "h", "port": "/dev/ttyUSB0"},
            "bus[0].port",
            "must be an integer from 1 to 65535, got string '/dev/ttyUSB0'",
        ),
        (
            {"host": "h", "port": 502, "baudrate": 9600},
            "bus[0].baudrate",
            "only for a kerong-cu or modbus-rtu bus, not a modbus-tcp one",
        ),
    ],
)
def test_modbus_tcp_rules(write, doc, refused, bus, key, reason):
    doc["bus"] = [{"name": "rs485", "kind": "modbus-tcp", **bus}]
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)


def test_simulated_bus_takes_no_wire_keys(write, doc, refused):
    doc["bus"] = [{"name": "rs485", "kind": "simulated", "poll_ms": 50}]
    assert load_config(write(doc)).buses[0].poll_ms == 50
    doc["bus"][0]["port"] = "/dev/ttyUSB0"
    err = refused(write(doc))
    assert (err.key, err.reason) == (
        "bus[0].port",
        "only for a kerong-cu or modbus-rtu or modbus-tcp bus, not a simulated one",
    )


def test_gpio_bank_loads(write, gpio_doc):
    gpio_doc["bus"][0].update(relay_active_high=False, pin_factory="mock", debounce_ms=10)
    config = load_config(write(gpio_doc))
    bus = config.buses[0]
    assert bus.relay_pins == (5, 6, 13, 19) and bus.sensor_pins == (17, 27, 22, 23)
    assert (bus.relay_active_high, bus.pin_factory, bus.debounce_ms) == (False, "mock", 10)
    assert config.boards[0].profile == "gpio"


def _gpio_bus(name: str, relay: list[int], sensor: list[int]) -> dict[str, Any]:
    return {"name": name, "kind": "gpio", "relay_pins": relay, "sensor_pins": sensor}


GPIO_ERRORS = [
    (
        lambda d: d["bus"][0].update(relay_pins=[5, 28, 13, 19]),
        "bus[0].relay_pins[1]",
        "must be an integer from 0 to 27, got 28",
    ),
    (lambda d: d["bus"][0].update(relay_pins=[]), "bus[0].relay_pins", None),
    (lambda d: d["bus"][0].update(relay_pins=5), "bus[0].relay_pins", None),
    (
        lambda d: d["bus"][0].update(sensor_pins=[17, 27, 22]),
        "bus[0].sensor_pins",
        "must list one pin per relay pin (4), got 3",
    ),
    (
        lambda d: d["bus"][0].update(sensor_pins=[17, 27, 22, 6]),
        "bus[0].sensor_pins[3]",
        "pin 6 is already used by bus[0].relay_pins[1]",
    ),
    (
        lambda d: d["bus"][0].update(relay_pins=[5, 6, 5, 19]),
        "bus[0].relay_pins[2]",
        "pin 5 is already used by bus[0].relay_pins[0]",
    ),
    (
        lambda d: d["bus"].append(_gpio_bus("pi2", [24], [5])),
        "bus[1].sensor_pins[0]",
        "pin 5 is already used by bus[0].relay_pins[0]",
    ),
    (
        lambda d: d["bus"].append(_gpio_bus("pi2", [24], [25])),
        "bus[1]",
        'a gpio bus needs exactly one [[board]] (unit 1, profile "gpio")',
    ),
    (
        lambda d: d["board"][0].update(unit=2),
        "board[0].unit",
        "must be 1 on a gpio bus (one board per gpio bus), got 2",
    ),
    (
        lambda d: d["board"].append({"bus": "pi", "unit": 2, "profile": "gpio", "channels": 4}),
        "board[1].unit",
        "must be 1 on a gpio bus (one board per gpio bus), got 2",
    ),
    (
        lambda d: d["board"][0].pop("profile"),
        "board[0].profile",
        "must be 'gpio' on a gpio bus, got 'kiosk-v1'",
    ),
    (
        lambda d: d["board"][0].update(channels=8),
        "board[0].channels",
        "must equal the number of relay_pins of bus 'pi' (4), got 8",
    ),
    (lambda d: d["bus"][0].update(pin_factory="RPi.GPIO"), "bus[0].pin_factory", None),
    (lambda d: d["bus"][0].update(pull_up="yes"), "bus[0].pull_up", None),
    (
        lambda d: d["bus"][0].update(baudrate=9600),
        "bus[0].baudrate",
        "only for a kerong-cu or modbus-rtu bus, not a gpio one",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "reason"), GPIO_ERRORS)
def test_gpio_rules(write, gpio_doc, refused, mutate, key, reason):
    mutate(gpio_doc)
    err = refused(write(gpio_doc))
    assert err.key == key
    if reason is not None:
        assert err.reason == reason


def test_gpio_profile_only_on_a_gpio_bus(write, doc, refused):
    doc["board"][0]["profile"] = "gpio"
    err = refused(write(doc))
    assert (err.key, err.reason) == (
        "board[0].profile",
        "'gpio' is only for a board on a gpio bus; bus 'rs485' is modbus-rtu",
    )


def test_mqtt_defaults(write, doc):
    doc["mqtt"] = {"host": "broker.example"}
    mqtt = load_config(write(doc)).mqtt
    assert mqtt is not None
    assert (mqtt.port, mqtt.prefix, mqtt.cert_file, mqtt.keepalive_s) == (
        8883,
        "lockers/v1",
        None,
        30,
    )


@pytest.mark.parametrize(
    ("given", "key", "reason"),
    [
        ("cert_file", "mqtt.key_file", "required when mqtt.cert_file is set (they go together)"),
        ("key_file", "mqtt.cert_file", "required when mqtt.key_file is set (they go together)"),
    ],
)
def test_mqtt_cert_and_key_go_together(write, doc, refused, given, key, reason):
    doc["mqtt"] = {"host": "broker.example", given: "/etc/kiosk/x.pem"}
    err = refused(write(doc))
    assert (err.key, err.reason) == (key, reason)


def test_mqtt_is_tls_unless_told_otherwise(write, doc):
    doc["mqtt"] = {"host": "broker.example"}
    mqtt = load_config(write(doc)).mqtt
    assert mqtt is not None and mqtt.tls is True
    doc["mqtt"]["tls"] = False
    mqtt = load_config(write(doc)).mqtt
    assert mqtt is not None and mqtt.tls is False


@pytest.mark.parametrize("given", ["ca_file", "cert_file"])
def test_mqtt_tls_false_refuses_tls_files(write, doc, refused, given):
    doc["mqtt"] = {"host": "broker.example", "tls": False, given: "/etc/kiosk/x.pem"}
    if given == "cert_file":
        doc["mqtt"]["key_file"] = "/etc/kiosk/x.key"
    err = refused(write(doc))
    assert (err.key, err.reason) == (
        "mqtt.tls",
        f"is false (plain TCP), but mqtt.{given} is set; "
        "remove the TLS files or the line tls = false",
    )


def _with_files(doc: Doc) -> Doc:
    doc["keys"]["cloud_public_key_file"] = "cloud.pem"
    doc["mqtt"] = {"host": "b", "ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "c.key"}
    return doc


def test_check_config_warns_about_missing_key_files(write, doc, tmp_path):
    path = write(_with_files(doc))
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "c.key").mkdir()
    assert check_config(path) == [
        f"keys.site_code_key_file: file not found: {tmp_path / 'site.key'}",
        f"keys.cloud_public_key_file: file not found: {tmp_path / 'cloud.pem'}",
        f"mqtt.cert_file: file not found: {tmp_path / 'c.pem'}",
        f"mqtt.key_file: not a file: {tmp_path / 'c.key'}",
    ]


def test_check_config_strict_makes_a_missing_file_an_error(write, doc, tmp_path):
    path = write(doc)
    with pytest.raises(ConfigError) as info:
        check_config(path, strict=True)
    assert str(info.value) == (
        f"{path}: keys.site_code_key_file: file not found: {tmp_path / 'site.key'}"
    )


def test_check_config_is_quiet_when_every_file_exists(write, doc, tmp_path):
    path = write(_with_files(doc))
    for name in ("site.key", "cloud.pem", "ca.pem", "c.pem", "c.key"):
        (tmp_path / name).write_text("x")
    assert check_config(path) == []
    assert check_config(path, strict=True) == []


def test_check_config_raises_on_config_errors(write, doc):
    doc["locker"][0]["channel"] = 99
    with pytest.raises(ConfigError) as info:
        check_config(write(doc))
    assert info.value.key == "locker[0].channel"
