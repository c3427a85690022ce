"""Typed rows of the ledger's tables (what the service reads; writes go through Ledger)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.clock import from_text
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus


def _time(value: str | None) -> datetime | None:
    return from_text(value) if value else None


@dataclass(frozen=True)
class LockerRow:
    label: str
    size: Size
    bus: str
    unit: int
    channel: int
    status: LockerStatus
    parcel_id: str | None
    reserved_until: datetime | None
    needs_check: bool
    note: str
    in_config: bool
    version: int

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> LockerRow:
        return cls(
            label=r["label"],
            size=Size(r["size"]),
            bus=r["bus"],
            unit=r["unit"],
            channel=r["channel"],
            status=LockerStatus(r["status"]),
            parcel_id=r["parcel_id"],
            reserved_until=_time(r["reserved_until"]),
            needs_check=bool(r["needs_check"]),
            note=r["note"],
            in_config=bool(r["in_config"]),
            version=r["version"],
        )


@dataclass(frozen=True)
class ParcelRow:
    parcel_id: str
    order_id: str
    size: Size
    status: ParcelStatus
    locker: str | None
    source: str
    deliver_by: datetime | None
    delivered_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None
    needs_check: bool
    check_reason: str
    expiring_sent: bool
    reminders_sent: int
    version: int
    created_at: datetime

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> ParcelRow:
        created = _time(r["created_at"])
        assert created is not None
        return cls(
            parcel_id=r["parcel_id"],
            order_id=r["order_id"],
            size=Size(r["size"]),
            status=ParcelStatus(r["status"]),
            locker=r["locker"],
            source=r["source"],
            deliver_by=_time(r["deliver_by"]),
            delivered_at=_time(r["delivered_at"]),
            expires_at=_time(r["expires_at"]),
            closed_at=_time(r["closed_at"]),
            needs_check=bool(r["needs_check"]),
            check_reason=r["check_reason"],
            expiring_sent=bool(r["expiring_sent"]),
            reminders_sent=r["reminders_sent"],
            version=r["version"],
            created_at=created,
        )


@dataclass(frozen=True)
class CodeRow:
    digest: str
    parcel_id: str
    role: str  # delivery | pickup | return


@dataclass(frozen=True)
class DoorOp:
    id: int
    kind: str  # delivery | pickup | collection | technician | reopen (a visit's door again)
    label: str
    parcel_id: str | None
    state: str  # PENDING | OPEN | DONE | FAILED | RECOVERED
    intent: str  # '' | doesnt_fit | cancel
    actor: str  # for a flow's operation and a reopen: the role (courier, customer, ...)
    reason: str
    reopened: int = 0  # times the presence sensor had this door opened again

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> DoorOp:
        return cls(
            r["id"],
            r["kind"],
            r["label"],
            r["parcel_id"],
            r["state"],
            r["intent"],
            r["actor"],
            r["reason"],
            r["reopened"],
        )


@dataclass(frozen=True)
class OutboxEvent:
    """One queued event. `raw` is the body exactly as stored (compact, sorted JSON)."""

    seq: int
    id: str
    type: str
    ts: str
    raw: str

    @functools.cached_property
    def body(self) -> dict[str, Any]:
        """The body, parsed on first use (the MQTT drain sends `raw` without parsing it)."""
        return dict(json.loads(self.raw))

    @classmethod
    def of(cls, seq: int, id_: str, type_: str, ts: str, body: dict[str, Any]) -> OutboxEvent:
        return cls(seq, id_, type_, ts, encode_body(body))


def encode_body(body: dict[str, Any]) -> str:
    """How an event body is stored and sent: compact JSON with sorted keys."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))
