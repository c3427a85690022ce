"""Building the cloud link from config (the daemon's composition root calls this)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kiosk import __version__
from kiosk.clock import Clock
from kiosk.cloud.commands import CommandHandler, DoorLimits
from kiosk.cloud.link import CloudLink, LinkTiming
from kiosk.cloud.mqtt import is_loopback
from kiosk.cloud.tokens import Verifier, load_public_key
from kiosk.config.model import KioskConfig
from kiosk.domain.errors import ConfigError
from kiosk.service.locker_service import LockerService

log = logging.getLogger(__name__)


def build_link(
    config: KioskConfig,
    service: LockerService,
    clock: Clock,
    timing: LinkTiming | None = None,
) -> CloudLink:
    """The link for `config.mqtt` (which must be set). Key and certificate problems fail here."""
    assert config.mqtt is not None
    mqtt = config.mqtt
    if not mqtt.tls and not is_loopback(mqtt.host):
        log.warning(
            "mqtt.tls = false: the cloud link to %s:%d is plain TCP (readable and forgeable on "
            "the way); use it only for a broker on this machine, else remove the line tls = false",
            mqtt.host,
            mqtt.port,
        )
    for name in ("ca_file", "cert_file", "key_file"):
        _check_tls_file(config, name, getattr(mqtt, name))
    key_file = config.keys.cloud_public_key_file
    public_key = None
    if key_file is None:
        log.error(
            "keys.cloud_public_key_file is not set: every cloud command will be refused "
            "(bad_signature); events still go up"
        )
    else:
        try:
            public_key = load_public_key(key_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(str(config.source), "keys.cloud_public_key_file", str(exc)) from exc
    # The link's outbox and inbox: a port the service hands out, not a reach through it.
    ledger = service.cloud_port()
    verifier = Verifier(public_key, config.site.id, config.policy.command_max_lifetime_s)
    limits = DoorLimits(per_hour=config.policy.remote_opens_per_hour)
    handler = CommandHandler(service, ledger, verifier, clock, door_limits=limits)
    try:
        link = CloudLink(
            mqtt,
            config.site,
            ledger,
            handler,
            clock,
            __version__,
            timing=timing,
            presence=service.presence,
        )
    except (OSError, ValueError) as exc:  # ssl: unreadable or mismatched certificate files
        raise ConfigError(str(config.source), "mqtt", f"TLS files: {exc}") from exc
    # Events leave as soon as they commit: each commit that queued one wakes the link.
    ledger.outbox.on_committed(link.wake)
    return link


def _check_tls_file(config: KioskConfig, name: str, path: Path | None) -> None:
    """A TLS file that is not there, named by its key and path (ssl's own error names neither)."""
    if path is None:
        return
    if not path.exists():
        reason = "no such file"
    elif not path.is_file():
        reason = "not a file"
    elif not os.access(path, os.R_OK):
        reason = "not readable by this user"
    else:
        return
    raise ConfigError(str(config.source), f"mqtt.{name}", f"{path}: {reason}")
