"""Bench fixture: a real ledger file holding a busy bank and a year of finished parcels.

The lockers table is built by `ledger.parcels.sync_lockers`, so labels, size ranks
and natural sort keys are exactly the product's. Everything else (past parcels,
their door operations, the parcels inside lockers now, their code digests) is
inserted directly with `executemany` in one transaction: it is a fixture, and
100,000 parcels through the service would take minutes. No audit rows are
written for the history (the hash chain would have to be rebuilt to stay
verifiable, and no measured query reads the audit table).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kiosk.clock import to_text
from kiosk.config.model import LockerConfig
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger

SIZES = (Size.S, Size.M, Size.L)
#: Share of S, M and L among compartments and among parcels.
SIZE_WEIGHTS = (5, 3, 2)
PICKUP_WINDOW = timedelta(days=3)
HOLD = timedelta(minutes=15)


@dataclass(frozen=True)
class BankState:
    """Shares of the lockers in each state now; the rest are AVAILABLE (scattered at random)."""

    occupied: float = 0.88
    reserved: float = 0.02
    out_of_service: float = 0.02
    expected: int = 40  # announced parcels that have not reached the bank yet


def bank_labels(rows: str, per_row: int) -> list[str]:
    """A-1 .. A-<per_row>, B-1 ..: labels whose text order is not their natural order."""
    return [f"{row}-{n}" for row in rows for n in range(1, per_row + 1)]


def modbus_lockers(labels: list[str], rng: random.Random) -> tuple[LockerConfig, ...]:
    """Lockers of mixed sizes on 16-channel boards of one RS-485 bus."""
    return tuple(
        LockerConfig(label, rng.choices(SIZES, SIZE_WEIGHTS)[0], "rs485", 1 + i // 16, i % 16)
        for i, label in enumerate(labels)
    )


def _digest(rng: random.Random) -> str:
    """A value shaped like a code digest (43 base64url characters)."""
    return base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode("ascii")


def _fitting(lockers: tuple[LockerConfig, ...]) -> dict[Size, list[str]]:
    return {s: [lk.label for lk in lockers if lk.size.fits(s)] for s in SIZES}


def _parcel_size(rng: random.Random, room: Size) -> Size:
    """A parcel size that fits in a locker of size `room`."""
    options = [s for s in SIZES if room.fits(s)]
    return rng.choices(options, SIZE_WEIGHTS[: len(options)])[0]


_PARCEL_COLUMNS = (
    "parcel_id",
    "order_id",
    "size",
    "status",
    "locker",
    "source",
    "deliver_by",
    "delivered_at",
    "expires_at",
    "closed_at",
    "expiring_sent",
    "reminders_sent",
    "version",
    "created_at",
    "updated_at",
)
_PARCEL_DEFAULTS: dict[str, Any] = {
    "order_id": "",
    "locker": None,
    "source": "cloud",
    "deliver_by": None,
    "delivered_at": None,
    "expires_at": None,
    "closed_at": None,
    "expiring_sent": 0,
    "reminders_sent": 0,
    "version": 1,
}
_INSERT_PARCEL = (
    f"INSERT INTO parcels ({', '.join(_PARCEL_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _PARCEL_COLUMNS)})"
)
_INSERT_OP = (
    "INSERT INTO door_ops (kind, label, parcel_id, state, actor, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _parcel(**columns: Any) -> tuple[Any, ...]:
    """One parcels row in _PARCEL_COLUMNS order; times may be given as datetimes."""
    row = {**_PARCEL_DEFAULTS, **columns}
    return tuple(
        to_text(v) if isinstance(v, datetime) else v for v in map(row.get, _PARCEL_COLUMNS)
    )


def _past_rows(
    rng: random.Random, count: int, lockers: tuple[LockerConfig, ...], now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Finished parcels (PICKED_UP, about 6% RETURNED) over the last year, and their door ops."""
    fitting = _fitting(lockers)
    parcels: list[tuple[Any, ...]] = []
    ops: list[tuple[Any, ...]] = []
    for i in range(count):
        size = rng.choices(SIZES, SIZE_WEIGHTS)[0]
        pid = f"PKG-{i:06d}-{rng.getrandbits(24):06X}"
        created = now - timedelta(seconds=rng.uniform(5 * 86400, 365 * 86400))
        delivered = created + timedelta(hours=rng.uniform(2, 48))
        expires = delivered + PICKUP_WINDOW
        returned = rng.random() < 0.06
        if returned:
            closed = expires + timedelta(hours=rng.uniform(2, 48))
        else:
            closed = delivered + timedelta(hours=rng.uniform(0.2, 70))
        label = rng.choice(fitting[size])
        parcels.append(
            _parcel(
                parcel_id=pid,
                order_id=f"ORD-{rng.getrandbits(40):010X}",
                size=size.value,
                status="RETURNED" if returned else "PICKED_UP",
                locker=label,
                deliver_by=created + timedelta(days=2),
                delivered_at=delivered,
                expires_at=expires,
                closed_at=closed,
                expiring_sent=int(returned or rng.random() < 0.3),
                reminders_sent=rng.choice((0, 0, 0, 1, 2)),
                version=5 if returned else 3,
                created_at=created,
                updated_at=closed,
            )
        )
        ops.append(("delivery", label, pid, "courier", to_text(delivered)))
        kind, actor = ("collection", "collector") if returned else ("pickup", "customer")
        ops.append((kind, label, pid, actor, to_text(closed)))
    return parcels, ops


def _current_rows(
    rng: random.Random, lockers: tuple[LockerConfig, ...], state: BankState, now: datetime
) -> dict[str, list[tuple[Any, ...]]]:
    """Parcels in the bank now, the codes that belong to them, and the lockers' new states."""
    out: dict[str, list[tuple[Any, ...]]] = {"parcels": [], "codes": [], "ops": [], "lockers": []}
    shuffled = list(lockers)
    rng.shuffle(shuffled)
    n = len(shuffled)
    n_occ, n_res = round(n * state.occupied), round(n * state.reserved)
    n_oos = round(n * state.out_of_service)
    stamp = to_text(now)
    for i, lk in enumerate(shuffled[: n_occ + n_res + n_oos]):
        pid = f"NOW-{i:05d}-{rng.getrandbits(24):06X}"
        size = _parcel_size(rng, lk.size).value
        created = now - timedelta(hours=rng.uniform(1, 96))
        if i < n_occ:
            delivered = now - timedelta(hours=rng.uniform(0.1, 90))
            expired = delivered + PICKUP_WINDOW < now
            out["parcels"].append(
                _parcel(
                    parcel_id=pid,
                    size=size,
                    status="EXPIRED" if expired else "DELIVERED",
                    locker=lk.label,
                    delivered_at=delivered,
                    expires_at=delivered + PICKUP_WINDOW,
                    version=2,
                    created_at=min(created, delivered),
                    updated_at=delivered,
                )
            )
            out["codes"].append((_digest(rng), pid, "return" if expired else "pickup"))
            out["lockers"].append(("OCCUPIED", pid, None, "", stamp, lk.label))
        elif i < n_occ + n_res:
            out["parcels"].append(
                _parcel(
                    parcel_id=pid,
                    size=size,
                    status="EXPECTED",
                    created_at=created,
                    updated_at=created,
                )
            )
            out["codes"] += [(_digest(rng), pid, "delivery"), (_digest(rng), pid, "pickup")]
            out["ops"].append(("delivery", lk.label, pid, "OPEN", "courier", stamp, stamp))
            out["lockers"].append(("RESERVED", pid, to_text(now + HOLD), "", stamp, lk.label))
        else:
            out["lockers"].append(("OUT_OF_SERVICE", None, None, "door_jammed", stamp, lk.label))
    for j in range(state.expected):
        pid = f"EXP-{j:05d}-{rng.getrandbits(24):06X}"
        size = rng.choices(SIZES, SIZE_WEIGHTS)[0].value
        out["parcels"].append(
            _parcel(
                parcel_id=pid,
                size=size,
                status="EXPECTED",
                deliver_by=now + timedelta(days=2),
                created_at=now,
                updated_at=now,
            )
        )
        out["codes"] += [(_digest(rng), pid, "delivery"), (_digest(rng), pid, "pickup")]
    return out


def fill_ledger(
    ledger: Ledger,
    lockers: tuple[LockerConfig, ...],
    past_parcels: int,
    state: BankState,
    now: datetime,
    seed: int,
) -> dict[str, Any]:
    """Sync the lockers the product's way, then load history and current state in one transaction.

    Returns what is in the file afterwards (counts by status), read back from it.
    """
    rng = random.Random(seed)
    with ledger.tx():
        ledger.parcels.sync_lockers(lockers, now)
    past, past_ops = _past_rows(rng, past_parcels, lockers, now)
    current = _current_rows(rng, lockers, state, now)
    conn = ledger.conn
    with ledger.tx():
        conn.executemany(_INSERT_PARCEL, past)
        conn.executemany(_INSERT_PARCEL, current["parcels"])
        conn.executemany(_INSERT_OP, [(k, lb, p, "DONE", a, t, t) for k, lb, p, a, t in past_ops])
        conn.executemany(_INSERT_OP, current["ops"])
        conn.executemany(
            "INSERT INTO codes (digest, parcel_id, role) VALUES (?, ?, ?)", current["codes"]
        )
        conn.executemany(
            "UPDATE lockers SET status = ?, parcel_id = ?, reserved_until = ?, note = ?,"
            " version = version + 1, updated_at = ? WHERE label = ?",
            current["lockers"],
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return contents(ledger)


def contents(ledger: Ledger) -> dict[str, Any]:
    conn = ledger.conn

    def by_status(table: str) -> dict[str, int]:
        rows = conn.execute(f"SELECT status, count(*) FROM {table} GROUP BY status ORDER BY 1")
        return {status: count for status, count in rows}

    return {
        "lockers": by_status("lockers"),
        "parcels": by_status("parcels"),
        "door_ops": int(conn.execute("SELECT count(*) FROM door_ops").fetchone()[0]),
        "codes": int(conn.execute("SELECT count(*) FROM codes").fetchone()[0]),
    }
