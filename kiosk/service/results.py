"""What the use cases hand back to the keypad, the API and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kiosk.domain.errors import KioskError

#: The person a code belongs to, as `kiosk code --json` spells it.
ROLE_OF_CODE = {"delivery": "courier", "pickup": "customer", "return": "collector"}


@dataclass(frozen=True)
class CodeResult:
    """A door that is now open for someone."""

    role: str  # courier | customer | collector | technician
    locker: str
    parcel_id: str | None
    size: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, **asdict(self), "error": None}


@dataclass(frozen=True)
class DoorOutcome:
    """What a door closing (or a courier's choice) finished."""

    locker: str
    kind: str  # delivery | pickup | collection | technician
    result: str  # delivered | picked_up | returned | released | closed
    parcel_id: str | None = None
    next: CodeResult | None = None  # "doesn't fit": the next locker, already open
    error: KioskError | None = None  # "doesn't fit" and nothing bigger is free

    def to_dict(self) -> dict[str, Any]:
        return {
            "locker": self.locker,
            "kind": self.kind,
            "result": self.result,
            "parcel_id": self.parcel_id,
            "next": self.next.to_dict() if self.next else None,
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass(frozen=True)
class AnnouncedParcel:
    """A parcel registered on a bank with no cloud; the only time its codes exist in clear."""

    parcel_id: str
    delivery_code: str
    pickup_code: str
    size: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
