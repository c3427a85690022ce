"""Config v1 as frozen dataclasses: what `load_config` returns and everything else reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import firmware_bridge.defaults as board_defaults
from kiosk.domain.sizes import Size

BUS_KINDS = ("modbus-rtu", "modbus-tcp", "gpio", "simulated", "kerong-cu")
BOARD_PROFILES = ("kiosk-v1", "waveshare-relay-d", "gpio", "kerong-cu")

#: A kerong-cu bus's baud rate when its config gives none: the boards' factory setting.
KERONG_BAUDRATE = 19200
#: Board addresses a KR-CU board can be set to (its address switch; unit in the config).
KERONG_UNITS = range(0, 16)

#: No lock output may ever be energised longer than this, whatever the config says (ms).
ABSOLUTE_MAX_PULSE_MS = 5000


@dataclass(frozen=True)
class SiteConfig:
    id: str
    name: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    help_phone: str = ""  # shown on the keypad's Help screen; "" shows none
    help_text: str = ""


@dataclass(frozen=True)
class LedgerConfig:
    path: Path


@dataclass(frozen=True)
class BackupConfig:
    #: Nightly backups (`kiosk backup --prune`) kept; older ones are removed.
    keep: int = 7


@dataclass(frozen=True)
class KeysConfig:
    site_code_key_file: Path
    cloud_public_key_file: Path | None = None


@dataclass(frozen=True)
class ApiConfig:
    socket: Path


@dataclass(frozen=True)
class BusConfig:
    """One bus. Which fields matter depends on `kind`.

    modbus-rtu: `device` (the TOML key `port`, a path), `baudrate`.
    modbus-tcp: `host`, `tcp_port` (the TOML key `port`, an int).
    gpio: `relay_pins`/`sensor_pins` (BCM numbers, index = channel),
          `presence_pins` (optional: one parcel-presence sensor per channel),
          `relay_active_high`, `sensor_open_high`, `pull_up`, `debounce_ms`,
          `pin_factory` ("" = gpiozero's default, "mock" = MockFactory).
    simulated: the built-in simulated board serves every unit of the bus;
          `door_close_s` (0 = never) is how long its simulated person keeps a
          door open before shutting it.
    kerong-cu: Kerong KR-CU boards on RS-485, their own protocol (not Modbus):
          `device` (the TOML key `port`), `baudrate` (19200 unless given).
    """

    name: str
    kind: str
    device: str | None = None
    baudrate: int = 115200
    host: str | None = None
    tcp_port: int | None = None
    timeout_s: float = 0.3
    retries: int = 2
    poll_ms: int = 100
    relay_pins: tuple[int, ...] = ()
    sensor_pins: tuple[int, ...] = ()
    presence_pins: tuple[int, ...] = ()  # gpio: parcel-presence sensors, none or one per relay
    relay_active_high: bool = True
    sensor_open_high: bool = True
    pull_up: bool = True
    debounce_ms: int = 30
    pin_factory: str = ""
    door_close_s: float = 3.0


@dataclass(frozen=True)
class BoardConfig:
    """One lock board: a Modbus unit, or the set of GPIO pins of a gpio bus (unit 1).

    Its defaults are the driver's (firmware_bridge.defaults), written once.
    """

    bus: str
    unit: int
    profile: str = board_defaults.PROFILE
    channels: int = board_defaults.CHANNELS
    pulse_ms: int = board_defaults.PULSE_MS
    max_pulse_ms: int = board_defaults.MAX_PULSE_MS
    #: waveshare-relay-d only: True when an input is active while its door is open (the
    #: default); False for contacts that close when the door shuts. None: the profile's own.
    sensor_open_high: bool | None = None
    #: kerong-cu only: IR sensors fitted, one per lock (their bits are parcel presence).
    ir_sensors: bool = False


#: A bank's front, for the optional [[locker]] column / row / rows keys (1-based).
#: The largest bank front a picture shows: columns, rows, and the rows one door may span.
MAX_BANK_COLUMNS, MAX_BANK_ROWS, MAX_DOOR_ROWS = 64, 64, 16


@dataclass(frozen=True)
class LockerConfig:
    label: str
    size: Size
    bus: str
    unit: int
    channel: int
    column: int | None = None  # its place in the bank's front (kiosk.domain.layout);
    row: int | None = None  # None: read from a label like A-1
    rows: int = 1  # a tall compartment spans this many rows from `row` down


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int = 8883
    prefix: str = "lockers/v1"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30
    outbox_cap: int = 100_000
    #: TLS unless told otherwise (`tls = false`: plain TCP, for a broker on this machine).
    tls: bool = True


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]`: Prometheus text exposition at http://<listen>/metrics."""

    listen: str  # "HOST:PORT"

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class PolicyConfig:
    """The bank's rules. Durations carry their unit in the name."""

    pickup_days: int = 3
    hold_minutes: int = 15
    max_failures: int = 5
    code_length: int = 6
    daily_failure_budget: int = 20
    backoff_first_s: int = 30
    backoff_max_s: int = 900
    expiring_hours: int = 24
    reminder_hours: int = 24
    door_open_timeout_s: float = 5.0
    unlock_retries: int = 1
    left_open_s: int = 120
    sweep_minutes: int = 60
    #: Remote door openings (`door.open`) a site allows in any rolling hour; 0 = none.
    remote_opens_per_hour: int = 10
    #: Longest lifetime (exp - iat) of a cloud command the kiosk accepts, in seconds.
    command_max_lifetime_s: int = 3600


@dataclass(frozen=True)
class KioskConfig:
    source: Path
    site: SiteConfig
    ledger: LedgerConfig
    keys: KeysConfig
    api: ApiConfig
    buses: tuple[BusConfig, ...]
    boards: tuple[BoardConfig, ...]
    lockers: tuple[LockerConfig, ...]
    mqtt: MqttConfig | None = None
    policy: PolicyConfig = PolicyConfig()
    backup: BackupConfig = BackupConfig()
    metrics: MetricsConfig | None = None
