"""Config v1: load and validate kiosk.toml into frozen dataclasses."""

from kiosk.config.loader import check_config, load_config, parse_config
from kiosk.config.model import (
    ABSOLUTE_MAX_PULSE_MS,
    BOARD_PROFILES,
    BUS_KINDS,
    ApiConfig,
    BackupConfig,
    BoardConfig,
    BusConfig,
    KeysConfig,
    KioskConfig,
    LedgerConfig,
    LockerConfig,
    MqttConfig,
    PolicyConfig,
    SiteConfig,
)

__all__ = [
    "ABSOLUTE_MAX_PULSE_MS",
    "BOARD_PROFILES",
    "BUS_KINDS",
    "ApiConfig",
    "BackupConfig",
    "BoardConfig",
    "BusConfig",
    "KeysConfig",
    "KioskConfig",
    "LedgerConfig",
    "LockerConfig",
    "MqttConfig",
    "PolicyConfig",
    "SiteConfig",
    "check_config",
    "load_config",
    "parse_config",
]
