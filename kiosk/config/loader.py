"""Load and validate kiosk.toml into frozen dataclasses, failing fast with file, key and reason.

Two passes. The first walks `schema.SECTIONS`: unknown keys, missing required
keys, types and ranges, each table into its dataclass. The second checks what
no single key can see: names that must be unique, references between buses,
boards and lockers, and pairs of keys that must agree. Each pass notes every
error it finds and goes on (`ConfigErrors` carries them all, and reads as the
first). The second runs on every table that loaded, beside the first pass's
errors; a check that would look for a table that did not load (a locker on a
bus whose keys were wrong) is left out, so that one bad table is one error,
not one more for everything that refers to it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kiosk.config.crossref import Unloaded, cell_clashes
from kiosk.config.model import (
    KERONG_BAUDRATE,
    KERONG_UNITS,
    BoardConfig,
    BusConfig,
    KioskConfig,
    LockerConfig,
    MqttConfig,
    PolicyConfig,
)
from kiosk.config.schema import KERONG, SECTIONS, FilePath, Invalid, Key, Section, toml_type
from kiosk.domain.errors import ConfigError

#: The key named in errors about the file as a whole (unreadable, not TOML).
FILE_KEY = "(file)"


class ConfigErrors(ConfigError):
    """Every error of one file, in the order found; its message is the first one's."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.key, first.reason)
        self.errors = list(errors)


class _Skip(Exception):
    """A value or table that did not load (its error is noted): leave it out and go on."""


def load_config(path: str | os.PathLike[str]) -> KioskConfig:
    """Read, parse and validate a config file. Raises ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), FILE_KEY, "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), FILE_KEY, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), FILE_KEY, f"not valid UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), FILE_KEY, f"not valid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], source: Path) -> KioskConfig:
    """Validate an already-parsed TOML document; `source` names it in errors and anchors paths."""
    return _Parser(Path(source)).parse(data)


def check_config(path: str | os.PathLike[str], strict: bool = False) -> list[str]:
    """Validate a config file for `kiosk config check`; returns warnings, raises ConfigError.

    A key or certificate file that does not exist is a warning (it may be
    installed later), or an error with `strict`.
    """
    config = load_config(path)
    warnings = []
    for key, file in _referenced_files(config):
        if file.is_file():
            continue
        reason = f"{'not a file' if file.exists() else 'file not found'}: {file}"
        if strict:
            raise ConfigError(str(path), key, reason)
        warnings.append(f"{key}: {reason}")
    return warnings


def _referenced_files(config: KioskConfig) -> list[tuple[str, Path]]:
    """(key path, file) for every FilePath(must_exist=True) value the config holds."""
    out = []
    for section in SECTIONS:
        value = getattr(config, section.field)
        tables = enumerate(value) if section.array else [(None, value)]
        for index, table in tables:
            if table is None:
                continue
            prefix = section.name if index is None else f"{section.name}[{index}]"
            for key in section.keys:
                if isinstance(key.check, FilePath) and key.check.must_exist:
                    file = getattr(table, key.field)
                    if file is not None:
                        out.append((f"{prefix}.{key.name}", file))
    return out


def _hint(name: str, known: Sequence[str]) -> str:
    # A loose cutoff: the key sets are small, and a wrong guess costs less than none.
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.3)
    return f" (did you mean {match[0]!r}?)" if match else ""


class _Parser:
    def __init__(self, source: Path) -> None:
        self.file = str(source)
        self.source = source.absolute()
        self.base = self.source.parent
        self.errors: list[ConfigError] = []
        self.unloaded = Unloaded()  # pass 2 leaves out what may refer to these

    def fail(self, key: str, reason: str) -> _Skip:
        """Note the error; the caller raises the _Skip returned to leave the thing out."""
        self.errors.append(ConfigError(self.file, key, reason))
        return _Skip()

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)

    # --- pass 1: each table on its own --------------------------------------

    def parse(self, data: Mapping[str, Any]) -> KioskConfig:
        names = [s.name for s in SECTIONS]
        for name in data:
            if name not in names:
                self.fail(name, "unknown key" + _hint(name, names))
        parts: dict[str, Any] = {}
        for section in SECTIONS:
            try:
                if section.array and (section.required or data.get(section.name)):
                    parts[section.field] = self.read_array(section, data.get(section.name))
                elif section.name in data:
                    parts[section.field] = self.read_table(
                        section, data[section.name], section.name
                    )
                elif section.required:
                    raise self.fail(section.name, f"required table [{section.name}] is missing")
            except _Skip:
                self.unloaded.note(section.name)
                continue
        self.check(parts)
        self.raise_errors()
        return KioskConfig(source=self.source, **parts)

    def read_array(self, section: Section, value: object) -> tuple[Any, ...]:
        name = section.name
        if value is None or value == []:
            raise self.fail(name, f"at least one [[{name}]] is required")
        if not isinstance(value, list):
            raise self.fail(
                name, f"must be an array of tables ([[{name}]]), got {toml_type(value)}"
            )
        tables = []
        for i, table in enumerate(value):
            try:
                tables.append(self.read_table(section, table, f"{name}[{i}]"))
            except _Skip:
                self.unloaded.note(name, table)
                continue
        return tuple(tables)

    def read_table(self, section: Section, table: object, prefix: str) -> Any:
        if not isinstance(table, dict):
            raise self.fail(prefix, f"must be a table, got {toml_type(table)}")
        before = len(self.errors)
        known = section.key_names()
        for name in table:
            if name not in known:
                self.fail(f"{prefix}.{name}", "unknown key" + _hint(name, known))
        selected = None
        if section.selector is not None:
            (selector,) = (k for k in section.keys if k.name == section.selector)
            selected = self.read_value(selector, table, prefix)  # which keys apply: or stop here
        keys = [k for k in section.keys if k.applies_to(selected)]
        for name in table:
            if name in known and not any(k.name == name for k in keys):
                kinds = sorted({kind for k in section.keys if k.name == name for kind in k.kinds})
                self.fail(
                    f"{prefix}.{name}",
                    f"only for a {' or '.join(kinds)} {section.name}, not a {selected} one",
                )
        values = {}
        for key in keys:
            try:
                if key.name in table:
                    values[key.field] = self.read_value(key, table, prefix)
                elif key.required:
                    why = f"required for a {selected} {section.name}" if key.kinds else "required"
                    raise self.fail(f"{prefix}.{key.name}", f"missing ({why})")
            except _Skip:
                continue
        if len(self.errors) > before:
            raise _Skip()
        if selected == KERONG and "baudrate" not in values:
            values["baudrate"] = KERONG_BAUDRATE  # the boards' factory rate, not Modbus's default
        return section.cls(**values)

    def read_value(self, key: Key, table: Mapping[str, Any], prefix: str) -> Any:
        path = f"{prefix}.{key.name}"
        if key.name not in table:
            raise self.fail(path, "missing (required)")
        try:
            value = key.check(table[key.name])
        except Invalid as exc:
            where = path if exc.index is None else f"{path}[{exc.index}]"
            raise self.fail(where, exc.reason) from None
        if isinstance(value, Path) and not value.is_absolute():
            value = self.base / value
        return value

    # --- pass 2: across tables ----------------------------------------------

    def check(self, parts: Mapping[str, Any]) -> None:
        """Every check across the tables that loaded (`parts`: KioskConfig's fields)."""
        buses = parts.get("buses", ())
        boards = parts.get("boards", ())
        self.check_buses(buses)
        self.check_boards(boards, buses)
        self.check_lockers(parts.get("lockers", ()), boards, buses)
        if parts.get("mqtt") is not None:
            self.check_mqtt(parts["mqtt"])
        if parts.get("policy") is not None:
            self.check_policy(parts["policy"])

    def check_buses(self, buses: Sequence[BusConfig]) -> None:
        names: dict[str, int] = {}
        devices: dict[str, int] = {}
        pins: dict[int, str] = {}
        for i, bus in enumerate(buses):
            if bus.name in names:
                self.fail(
                    f"bus[{i}].name",
                    f"duplicate bus name {bus.name!r} (also bus[{names[bus.name]}])",
                )
            names[bus.name] = i
            if bus.device is not None:
                if bus.device in devices:
                    self.fail(
                        f"bus[{i}].port",
                        f"serial device {bus.device} is already used by bus[{devices[bus.device]}]",
                    )
                devices[bus.device] = i
            if len(bus.sensor_pins) != len(bus.relay_pins):
                self.fail(
                    f"bus[{i}].sensor_pins",
                    f"must list one pin per relay pin ({len(bus.relay_pins)}), "
                    f"got {len(bus.sensor_pins)}",
                )
            if bus.presence_pins and len(bus.presence_pins) != len(bus.relay_pins):
                self.fail(
                    f"bus[{i}].presence_pins",
                    f"must list one pin per relay pin ({len(bus.relay_pins)}), "
                    f"got {len(bus.presence_pins)} (or leave it out: no presence sensors)",
                )
            for field in ("relay_pins", "sensor_pins", "presence_pins"):
                for j, pin in enumerate(getattr(bus, field)):
                    where = f"bus[{i}].{field}[{j}]"
                    if pin in pins:
                        self.fail(where, f"pin {pin} is already used by {pins[pin]}")
                    pins[pin] = where

    def check_boards(self, boards: Sequence[BoardConfig], buses: Sequence[BusConfig]) -> None:
        bus_by_name = {b.name: b for b in buses}
        seen: dict[tuple[str, int], int] = {}
        for i, board in enumerate(boards):
            bus = self.find_bus(f"board[{i}].bus", board.bus, bus_by_name)
            if bus is None:
                continue
            where = f"board[{i}]"
            if (board.bus, board.unit) in seen:
                other = seen[(board.bus, board.unit)]
                self.fail(
                    f"{where}.unit",
                    f"duplicate unit {board.unit} on bus {board.bus!r} (also board[{other}])",
                )
            seen[(board.bus, board.unit)] = i
            if board.pulse_ms > board.max_pulse_ms:
                self.fail(
                    f"{where}.pulse_ms",
                    f"must not exceed max_pulse_ms ({board.max_pulse_ms}), got {board.pulse_ms}",
                )
            if board.sensor_open_high is not None and board.profile != "waveshare-relay-d":
                self.fail(
                    f"{where}.sensor_open_high",
                    "only a waveshare-relay-d board has it (a kiosk-v1 board reads 1 = open; "
                    "a gpio bus sets its own sensor_open_high)",
                )
            if bus.kind == KERONG:
                self.check_kerong_board(where, board)
            elif board.profile == KERONG:
                self.fail(
                    f"{where}.profile",
                    f"'kerong-cu' is only for a board on a kerong-cu bus; bus {bus.name!r} is "
                    f"{bus.kind}",
                )
            elif board.unit == 0:
                self.fail(
                    f"{where}.unit",
                    f"must be 1 to 247 on a {bus.kind} bus (0 is the Modbus broadcast address)",
                )
            if board.ir_sensors and bus.kind != KERONG:
                self.fail(
                    f"{where}.ir_sensors",
                    "only a kerong-cu board has it (a Modbus board says its own presence "
                    "sensors; a gpio bus lists presence_pins)",
                )
            if bus.kind == "gpio":
                self.check_gpio_board(where, board, bus)
            elif board.profile == "gpio":
                self.fail(
                    f"{where}.profile",
                    f"'gpio' is only for a board on a gpio bus; bus {bus.name!r} is {bus.kind}",
                )
        for i, bus in enumerate(buses):
            if self.unloaded.may_be("board", bus.name):
                continue  # its board may be the one whose keys were wrong
            if bus.kind == "gpio" and not any(b.bus == bus.name for b in boards):
                self.fail(
                    f"bus[{i}]", 'a gpio bus needs exactly one [[board]] (unit 1, profile "gpio")'
                )

    def check_kerong_board(self, where: str, board: BoardConfig) -> None:
        if board.profile != KERONG:
            self.fail(
                f"{where}.profile", f"must be 'kerong-cu' on a kerong-cu bus, got {board.profile!r}"
            )
        if board.unit not in KERONG_UNITS:
            self.fail(
                f"{where}.unit",
                f"must be the board's address switch, 0 to 15, on a kerong-cu bus, "
                f"got {board.unit}",
            )
        if board.channels > 16:
            self.fail(
                f"{where}.channels", f"a kerong-cu board has 1 to 16 locks, got {board.channels}"
            )

    def check_gpio_board(self, where: str, board: BoardConfig, bus: BusConfig) -> None:
        if board.unit != 1:
            self.fail(
                f"{where}.unit",
                f"must be 1 on a gpio bus (one board per gpio bus), got {board.unit}",
            )
        if board.profile != "gpio":
            self.fail(f"{where}.profile", f"must be 'gpio' on a gpio bus, got {board.profile!r}")
        if board.channels != len(bus.relay_pins):
            self.fail(
                f"{where}.channels",
                f"must equal the number of relay_pins of bus {bus.name!r} "
                f"({len(bus.relay_pins)}), got {board.channels}",
            )

    def check_lockers(
        self,
        lockers: Sequence[LockerConfig],
        boards: Sequence[BoardConfig],
        buses: Sequence[BusConfig],
    ) -> None:
        bus_by_name = {b.name: b for b in buses}
        board_by_unit = {(b.bus, b.unit): b for b in boards}
        labels: dict[str, int] = {}
        channels: dict[tuple[str, int, int], int] = {}
        duplicates: set[int] = set()
        for i, locker in enumerate(lockers):
            where = f"locker[{i}]"
            if locker.label in labels:
                self.fail(
                    f"{where}.label",
                    f"duplicate label {locker.label!r} (also locker[{labels[locker.label]}])",
                )
                duplicates.add(i)
            labels[locker.label] = i
            if self.find_bus(f"{where}.bus", locker.bus, bus_by_name) is None:
                continue
            board = board_by_unit.get((locker.bus, locker.unit))
            if board is None and self.unloaded.may_be("board", locker.bus):
                continue
            if board is None:
                self.fail(
                    f"{where}.unit", f"no [[board]] with bus {locker.bus!r} and unit {locker.unit}"
                )
                continue
            if locker.channel >= board.channels:
                self.fail(
                    f"{where}.channel",
                    f"must be below the board's channels ({board.channels}), got {locker.channel}",
                )
            spot = (locker.bus, locker.unit, locker.channel)
            if spot in channels:
                other = channels[spot]
                self.fail(
                    f"{where}.channel",
                    f"channel {locker.channel} of bus {locker.bus!r} unit {locker.unit} is already "
                    f"used by locker[{other}] ({lockers[other].label})",
                )
            channels[spot] = i
        for i, key, reason in cell_clashes(lockers, duplicates):
            self.fail(f"locker[{i}].{key}", reason)

    def find_bus(
        self, key: str, name: str, bus_by_name: Mapping[str, BusConfig]
    ) -> BusConfig | None:
        bus = bus_by_name.get(name)
        if bus is None and not self.unloaded.may_be("bus", name):
            self.fail(key, f"no [[bus]] named {name!r}" + _hint(name, list(bus_by_name)))
        return bus

    def check_mqtt(self, mqtt: MqttConfig) -> None:
        if (mqtt.cert_file is None) != (mqtt.key_file is None):
            missing, given = (
                ("key_file", "cert_file") if mqtt.key_file is None else ("cert_file", "key_file")
            )
            self.fail(f"mqtt.{missing}", f"required when mqtt.{given} is set (they go together)")
        if not mqtt.tls:
            for name in ("ca_file", "cert_file"):
                if getattr(mqtt, name) is not None:
                    self.fail(
                        "mqtt.tls",
                        f"is false (plain TCP), but mqtt.{name} is set; "
                        "remove the TLS files or the line tls = false",
                    )

    def check_policy(self, policy: PolicyConfig) -> None:
        if policy.backoff_first_s > policy.backoff_max_s:
            self.fail(
                "policy.backoff_first_s",
                f"must not exceed backoff_max_s ({policy.backoff_max_s}), "
                f"got {policy.backoff_first_s}",
            )
