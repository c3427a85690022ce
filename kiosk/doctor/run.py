"""Run every check in order and print the table or the JSON; exit 0 when none failed."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from kiosk.config.loader import FILE_KEY, load_config
from kiosk.doctor import broker, hardware, local
from kiosk.doctor.result import FAIL, Check, fail, skip
from kiosk.domain.errors import ConfigError

#: The checks that need a config, in the order they print.
AFTER_CONFIG = (
    "key_files",
    "serial_port",
    "boards",
    "doors",
    "presence",
    "ledger",
    "audit_chain",
    "disk",
    "broker",
    "client_cert",
)


def checks(config_path: str) -> list[Check]:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fix = (
            "name the config with --config FILE or $KIOSK_CONFIG (else /etc/kiosk/kiosk.toml)"
            if exc.key == FILE_KEY
            else "fix the key it names; `kiosk config check FILE` says more"
        )
        out = [fail("config", exc.message, fix)]
        out += [skip(name, "the config does not load") for name in AFTER_CONFIG]
        return [*out, *local.clock(), *local.units()]
    return [
        Check("config", "ok", f"{config.source}: valid"),
        *local.key_files(config),
        *local.serial_ports(config),
        *hardware.boards_and_doors(config),
        *local.ledger(config),
        *local.disk(config),
        *broker.broker(config),
        *local.clock(),
        *local.units(),
    ]


def report(found: list[Check], as_json: bool, out: TextIO = sys.stdout) -> int:
    healthy = not any(c.status == FAIL for c in found)
    if as_json:
        json.dump({"ok": healthy, "checks": [c.to_dict() for c in found]}, out, indent=2)
        out.write("\n")
    else:
        width = max(len(c.name) for c in found)
        for c in found:
            out.write(f"{c.status.upper():<5} {c.name:<{width}}  {c.detail}\n")
            if c.fix:
                out.write(f"{'':<5} {'':<{width}}  fix: {c.fix}\n")
        failed = sum(c.status == FAIL for c in found)
        out.write("healthy\n" if healthy else f"{failed} check(s) failed\n")
    return 0 if healthy else 1
