"""MQTT contract v1: topic names and the JSON payloads the kiosk publishes (no I/O here).

The contract: docs/contracts/mqtt.md, and docs/mqtt-asyncapi.yaml as JSON Schemas.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.clock import to_text
from kiosk.config.model import SiteConfig
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus
from kiosk.ledger.records import LockerRow, OutboxEvent

#: The topic names under `<prefix>/<site>/`.
STATUS, STATE, EVENTS, COMMANDS = "status", "state", "events", "commands"


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    def of(self, name: str) -> str:
        return f"{self.prefix}/{self.site}/{name}"

    @property
    def status(self) -> str:
        return self.of(STATUS)

    @property
    def state(self) -> str:
        return self.of(STATE)

    @property
    def events(self) -> str:
        return self.of(EVENTS)

    @property
    def commands(self) -> str:
        return self.of(COMMANDS)


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")


def event_payload(event: OutboxEvent) -> bytes:
    """`{"id", "seq", "type", "ts", "body"}`: the outbox row as it goes up.

    Assembled around the body exactly as the ledger stores it (compact, sorted:
    the backlog drain's hot path parses nothing); the result is the same JSON
    as `dumps()` of the whole would give.
    """
    # id (a uuid), ts (RFC 3339) and type (a dotted name) are written by the
    # ledger and need no JSON escaping; `_plain` checks that cheaply.
    head = (event.id, event.ts, event.type)
    if not all(map(_plain, head)):
        head = tuple(json.dumps(h)[1:-1] for h in head)
    return (
        f'{{"body":{event.raw},"id":"{head[0]}","seq":{int(event.seq)},'
        f'"ts":"{head[1]}","type":"{head[2]}"}}'
    ).encode()


def _plain(text: str) -> bool:
    """Nothing in `text` that JSON would escape."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def status_payload(
    online: bool, now: datetime, version: str, outbox: dict[str, Any] | None = None
) -> bytes:
    """`{"online", "ts", "version"}`; while online also `outbox: {depth, cap, level}`."""
    data: dict[str, Any] = {"online": online, "ts": to_text(now), "version": version}
    if outbox is not None:
        data["outbox"] = outbox
    return dumps(data)


def lockers_by_size(lockers: Iterable[LockerRow]) -> dict[str, dict[str, int]]:
    """Per size: configured lockers, those a courier could be given now, those out of service.

    `available` counts what assignment would hand out: AVAILABLE, not flagged
    for a technician's check. Lockers removed from config are not counted.
    """
    out = {s.value: {"total": 0, "available": 0, "out_of_service": 0} for s in Size}
    for row in lockers:
        if not row.in_config:
            continue
        counts = out[row.size.value]
        counts["total"] += 1
        if row.status is LockerStatus.AVAILABLE and not row.needs_check:
            counts["available"] += 1
        elif row.status is LockerStatus.OUT_OF_SERVICE:
            counts["out_of_service"] += 1
    return out


def state_snapshot(
    site: SiteConfig,
    lockers: Iterable[LockerRow],
    presence: Mapping[str, bool | None] | None = None,
) -> dict[str, Any]:
    """The retained state without its timestamp (what is compared to decide to publish).

    `presence` (contract v1.1): each configured locker's parcel-presence sensor,
    true / false, or null where no sensor is fitted.
    """
    rows = list(lockers)
    seen = presence or {}
    return {
        "site": site.id,
        "location": {
            "name": site.name,
            "address": site.address,
            "lat": site.lat,
            "lon": site.lon,
        },
        "lockers": lockers_by_size(rows),
        "presence": {row.label: seen.get(row.label) for row in rows if row.in_config},
    }


def state_payload(snapshot: dict[str, Any], now: datetime) -> bytes:
    return dumps({**snapshot, "ts": to_text(now)})


def outbox_level(depth: int, cap: int, near: float = 0.8) -> str:
    """ok below `near` of the cap, near_cap from there, full at or beyond the cap."""
    if depth >= cap:
        return "full"
    return "near_cap" if depth >= near * cap else "ok"
