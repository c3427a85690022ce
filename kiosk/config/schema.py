"""The config v1 schema: every TOML key with its type, bounds and target dataclass field.

The loader walks these tables; nothing else knows the key names. A key that
is absent takes its dataclass field's default, so defaults live in one place
(`model.py`) and the tables here only say what a present value must look like.
Every key is documented in docs/config.md (tests/test_docs.py checks).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.config.model import (
    ABSOLUTE_MAX_PULSE_MS,
    BOARD_PROFILES,
    BUS_KINDS,
    MAX_BANK_COLUMNS,
    MAX_BANK_ROWS,
    MAX_DOOR_ROWS,
    ApiConfig,
    BackupConfig,
    BoardConfig,
    BusConfig,
    KeysConfig,
    LedgerConfig,
    LockerConfig,
    MetricsConfig,
    MqttConfig,
    PolicyConfig,
    SiteConfig,
)
from kiosk.domain.sizes import Size

#: Baud rates a serial port can be opened at (pyserial's standard set, 1200 and up).
STANDARD_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

#: gpiozero pin factories; "" lets gpiozero pick (or $GPIOZERO_PIN_FACTORY).
PIN_FACTORIES = ("", "lgpio", "mock", "native", "pigpio", "rpigpio")

#: Highest BCM GPIO number on a Raspberry Pi's 40-pin header.
MAX_BCM_PIN = 27


class Invalid(ValueError):
    """A value that breaks its key's rule; `index` names the bad element of an array."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: bool is an int subclass
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "table"),
    (dt.datetime, "date-time"),  # before date: datetime is a date subclass
    (dt.date, "date"),
    (dt.time, "time"),
)


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, for error messages."""
    for cls, name in _TOML_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _wrong_type(value: object) -> str:
    if isinstance(value, list | dict):
        return toml_type(value)
    return f"{toml_type(value)} {value!r}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    """An integer in lo..hi inclusive; `note` says why the bounds are what they are."""

    lo: int
    hi: int
    note: str = ""

    def __call__(self, value: object) -> int:
        want = f"an integer from {self.lo} to {self.hi}{self.note}"
        if not _is_int(value):
            raise Invalid(f"must be {want}, got {_wrong_type(value)}")
        assert isinstance(value, int)
        if not self.lo <= value <= self.hi:
            raise Invalid(f"must be {want}, got {value}")
        return value


@dataclass(frozen=True)
class IntChoice:
    """An integer from a fixed set."""

    options: tuple[int, ...]
    what: str

    def __call__(self, value: object) -> int:
        want = f"{self.what} ({', '.join(map(str, self.options))})"
        if not _is_int(value):
            raise Invalid(f"must be {want}, got {_wrong_type(value)}")
        if value not in self.options:
            raise Invalid(f"must be {want}, got {value}")
        assert isinstance(value, int)
        return value


@dataclass(frozen=True)
class Float:
    """A finite number in lo..hi inclusive; TOML integers are accepted and made floats."""

    lo: float
    hi: float

    def __call__(self, value: object) -> float:
        want = f"a number from {self.lo:g} to {self.hi:g}"
        if not (_is_int(value) or isinstance(value, float)):
            raise Invalid(f"must be {want}, got {_wrong_type(value)}")
        assert isinstance(value, int | float)
        number = float(value)
        if not (math.isfinite(number) and self.lo <= number <= self.hi):
            raise Invalid(f"must be {want}, got {value}")
        return number


@dataclass(frozen=True)
class Bool:
    def __call__(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, got {_wrong_type(value)}")
        return value


@dataclass(frozen=True)
class Text:
    """A string matching `pattern` in full; `what` describes it in errors."""

    pattern: str
    what: str

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be {self.what}, got {_wrong_type(value)}")
        if re.fullmatch(self.pattern, value) is None:
            raise Invalid(f"must be {self.what}, got {value!r}")
        return value


@dataclass(frozen=True)
class OneOf:
    options: tuple[str, ...]

    def __call__(self, value: object) -> str:
        want = "one of " + ", ".join(repr(o) for o in self.options)
        if not isinstance(value, str):
            raise Invalid(f"must be {want}, got {_wrong_type(value)}")
        if value not in self.options:
            raise Invalid(f"must be {want}, got {value!r}")
        return value


@dataclass(frozen=True)
class FilePath:
    """A file system path; a relative one is resolved by the loader against the config's folder.

    `must_exist`: a file the daemon reads (a key or certificate); `check_config`
    reports it when missing. Files the daemon creates (ledger, socket) are not checked.
    """

    must_exist: bool = False

    def __call__(self, value: object) -> Path:
        if not isinstance(value, str):
            raise Invalid(f"must be a path (a string), got {_wrong_type(value)}")
        if not value.strip() or "\0" in value:
            raise Invalid(f"must be a non-empty path, got {value!r}")
        return Path(value)


@dataclass(frozen=True)
class IntList:
    """A non-empty array of integers in lo..hi, at most `max_len` long; becomes a tuple."""

    lo: int
    hi: int
    max_len: int

    def __call__(self, value: object) -> tuple[int, ...]:
        want = f"an array of 1 to {self.max_len} integers from {self.lo} to {self.hi}"
        if not isinstance(value, list):
            raise Invalid(f"must be {want}, got {_wrong_type(value)}")
        if not 1 <= len(value) <= self.max_len:
            raise Invalid(f"must be {want}, got {len(value)} items")
        element = Int(self.lo, self.hi)
        out = []
        for index, item in enumerate(value):
            try:
                out.append(element(item))
            except Invalid as exc:
                raise Invalid(exc.reason, index) from None
        return tuple(out)


@dataclass(frozen=True)
class SizeValue:
    def __call__(self, value: object) -> Size:
        want = "S, M or L"
        if not isinstance(value, str):
            raise Invalid(f"must be {want}, got {_wrong_type(value)}")
        try:
            return Size.parse(value)
        except ValueError:
            raise Invalid(f"must be {want}, got {value!r}") from None


Check = Callable[[object], object]


@dataclass(frozen=True)
class Key:
    """One TOML key. `attr` is the dataclass field it fills ("" = the key's own name).

    `kinds` (bus keys only) lists the bus kinds the key applies to; () = every kind.
    """

    name: str
    check: Check
    required: bool = False
    attr: str = ""
    kinds: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        return self.attr or self.name

    def applies_to(self, kind: str | None) -> bool:
        return not self.kinds or kind in self.kinds


@dataclass(frozen=True)
class Section:
    """One top-level table ([name]) or array of tables ([[name]]) and the dataclass it fills.

    `field` is the KioskConfig attribute. A required array needs at least one entry.
    `selector` names the key read first because it decides which other keys apply.
    """

    name: str
    cls: type
    field: str
    keys: tuple[Key, ...]
    array: bool = False
    required: bool = True
    selector: str | None = None

    def key_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.name for k in self.keys))


RTU, TCP, GPIO, SIM, KERONG = BUS_KINDS
_ID = Text(r"[A-Za-z0-9_-]{1,64}", "1 to 64 characters of A-Z a-z 0-9 _ -")
_NAME = Text(r"[A-Za-z0-9_-]{1,32}", "1 to 32 characters of A-Z a-z 0-9 _ -")
_LABEL = Text(r"[A-Za-z0-9-]{1,16}", "1 to 16 characters of A-Z a-z 0-9 -")
_PROSE = Text(r"(?s).{0,200}", "a string of at most 200 characters")
_PHONE = Text(r"[0-9+()./ -]{0,32}", "a phone number: at most 32 of 0-9 + ( ) . / - and spaces")
_HOST = Text(r"[^\s/]{1,253}", "a host name or IP address")
_DEVICE = Text(r"\S(?s:.){0,254}", "a serial device path such as /dev/ttyUSB0")
_PREFIX = Text(
    r"(?=.{1,100}$)[^/#+\s]+(/[^/#+\s]+)*",
    "MQTT topic levels separated by / (no +, #, spaces, or leading or trailing /)",
)
_LISTEN = Text(
    r"(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]{1,253}):(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}"
    r"|[1-5]\d{4}|[1-9]\d{0,3})",
    "HOST:PORT, such as 127.0.0.1:9108 ([::1]:9108 for IPv6)",
)
_UNIT_NOTE = " (0 only for a kerong-cu board)"
_PULSE_NOTE = f"; the hard cap ABSOLUTE_MAX_PULSE_MS is {ABSOLUTE_MAX_PULSE_MS}"

SECTIONS: tuple[Section, ...] = (
    Section(
        "site",
        SiteConfig,
        "site",
        (
            Key("id", _ID, required=True),
            Key("name", _PROSE),
            Key("address", _PROSE),
            Key("lat", Float(-90, 90)),
            Key("lon", Float(-180, 180)),
            Key("help_phone", _PHONE),
            Key("help_text", _PROSE),
        ),
    ),
    Section("ledger", LedgerConfig, "ledger", (Key("path", FilePath(), required=True),)),
    Section(
        "keys",
        KeysConfig,
        "keys",
        (
            Key("site_code_key_file", FilePath(must_exist=True), required=True),
            Key("cloud_public_key_file", FilePath(must_exist=True)),
        ),
    ),
    Section("api", ApiConfig, "api", (Key("socket", FilePath(), required=True),)),
    Section(
        "bus",
        BusConfig,
        "buses",
        array=True,
        selector="kind",
        keys=(
            Key("name", _NAME, required=True),
            Key("kind", OneOf(BUS_KINDS), required=True),
            Key("port", _DEVICE, required=True, attr="device", kinds=(RTU, KERONG)),
            Key(
                "baudrate",
                IntChoice(STANDARD_BAUDRATES, "a standard baud rate"),
                kinds=(RTU, KERONG),
            ),
            Key("host", _HOST, required=True, kinds=(TCP,)),
            Key("port", Int(1, 65535), required=True, attr="tcp_port", kinds=(TCP,)),
            Key("timeout_s", Float(0.01, 10), kinds=(RTU, TCP, SIM, KERONG)),
            Key("retries", Int(0, 10), kinds=(RTU, TCP, SIM, KERONG)),
            Key("poll_ms", Int(10, 10_000)),
            Key("relay_pins", IntList(0, MAX_BCM_PIN, 64), required=True, kinds=(GPIO,)),
            Key("sensor_pins", IntList(0, MAX_BCM_PIN, 64), required=True, kinds=(GPIO,)),
            Key("presence_pins", IntList(0, MAX_BCM_PIN, 64), kinds=(GPIO,)),
            Key("relay_active_high", Bool(), kinds=(GPIO,)),
            Key("sensor_open_high", Bool(), kinds=(GPIO,)),
            Key("pull_up", Bool(), kinds=(GPIO,)),
            Key("debounce_ms", Int(0, 1000), kinds=(GPIO,)),
            Key("pin_factory", OneOf(PIN_FACTORIES), kinds=(GPIO,)),
            Key("door_close_s", Float(0, 3600), kinds=(SIM,)),
        ),
    ),
    Section(
        "board",
        BoardConfig,
        "boards",
        array=True,
        keys=(
            Key("bus", _NAME, required=True),
            Key("unit", Int(0, 247, _UNIT_NOTE), required=True),
            Key("profile", OneOf(BOARD_PROFILES)),
            Key("channels", Int(1, 64)),
            Key("pulse_ms", Int(50, ABSOLUTE_MAX_PULSE_MS, _PULSE_NOTE)),
            Key("max_pulse_ms", Int(50, ABSOLUTE_MAX_PULSE_MS, _PULSE_NOTE)),
            Key("sensor_open_high", Bool()),
            Key("ir_sensors", Bool()),
        ),
    ),
    Section(
        "locker",
        LockerConfig,
        "lockers",
        array=True,
        keys=(
            Key("label", _LABEL, required=True),
            Key("size", SizeValue(), required=True),
            Key("bus", _NAME, required=True),
            Key("unit", Int(0, 247, _UNIT_NOTE), required=True),
            Key("channel", Int(0, 63), required=True),
            Key("column", Int(1, MAX_BANK_COLUMNS)),
            Key("row", Int(1, MAX_BANK_ROWS)),
            Key("rows", Int(1, MAX_DOOR_ROWS)),
        ),
    ),
    Section(
        "mqtt",
        MqttConfig,
        "mqtt",
        required=False,
        keys=(
            Key("host", _HOST, required=True),
            Key("port", Int(1, 65535)),
            Key("prefix", _PREFIX),
            Key("ca_file", FilePath(must_exist=True)),
            Key("cert_file", FilePath(must_exist=True)),
            Key("key_file", FilePath(must_exist=True)),
            Key("keepalive_s", Int(5, 3600)),
            Key("outbox_cap", Int(1000, 10_000_000)),
            Key("tls", Bool()),
        ),
    ),
    Section(
        "policy",
        PolicyConfig,
        "policy",
        required=False,
        keys=(
            Key("pickup_days", Int(1, 30)),
            Key("hold_minutes", Int(1, 120)),
            Key("max_failures", Int(1, 20)),
            Key("code_length", Int(6, 10)),
            Key("daily_failure_budget", Int(1, 10_000)),
            Key("backoff_first_s", Int(1, 3600)),
            Key("backoff_max_s", Int(1, 86_400)),
            Key("expiring_hours", Int(1, 168)),
            Key("reminder_hours", Int(1, 168)),
            Key("door_open_timeout_s", Float(0.5, 60)),
            Key("unlock_retries", Int(0, 5)),
            Key("left_open_s", Int(10, 3600)),
            Key("sweep_minutes", Int(1, 1440)),
            Key("remote_opens_per_hour", Int(0, 1000)),
            Key("command_max_lifetime_s", Int(60, 7 * 86_400)),
        ),
    ),
)

SECTIONS += (
    Section("backup", BackupConfig, "backup", required=False, keys=(Key("keep", Int(1, 1000)),)),
    Section(
        "metrics",
        MetricsConfig,
        "metrics",
        required=False,
        keys=(Key("listen", _LISTEN, required=True),),
    ),
)

SECTION_BY_NAME = {s.name: s for s in SECTIONS}
