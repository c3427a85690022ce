"""One error hierarchy for the application, each with a stable `code`.

`code` values are a contract (API replies, `kiosk code --json`, MQTT
`command.result`). `message` is written for the person at the keypad or the
operator: it says what happened and what to do next.
"""

from __future__ import annotations

from typing import Any


class KioskError(Exception):
    """Base of every application error."""

    code = "kiosk_error"
    default_message = "Something went wrong."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        out.update(self.details)
        return out


# --- code entry -------------------------------------------------------------


class InvalidCode(KioskError):
    code = "invalid_code"
    default_message = "That code is not valid. Check the code in your message and try again."


class CodeExpired(KioskError):
    code = "code_expired"
    default_message = "That code has expired. Contact customer support for a new one."


class NotYetDelivered(KioskError):
    code = "not_delivered"
    default_message = (
        "Your parcel has not been delivered yet. You will get a message when it is ready."
    )


class LockedOut(KioskError):
    code = "locked_out"
    default_message = "Too many wrong codes. Please wait before trying again."


class SiteLocked(KioskError):
    code = "site_locked"
    default_message = (
        "Code entry is paused at this locker bank for safety. Support has been told; "
        "please contact customer support."
    )


# --- lockers and doors ------------------------------------------------------


class NoLockerAvailable(KioskError):
    code = "no_locker_available"
    default_message = "No free locker fits this parcel right now. Please keep the parcel."


class DoorJammed(KioskError):
    code = "door_jammed"
    default_message = "The door did not open. A technician has been called."


class DoorStateUnknown(KioskError):
    """The lock took the pulse, but the door's sensor could not be read afterwards.

    Not a jam (the door may well be open) and not "nothing changed": the
    locker is flagged for a technician's check and settled once it reads again.
    """

    code = "door_state_unknown"
    default_message = (
        "The lock was released, but we cannot tell whether the door opened. "
        "A technician has been called."
    )


class LockerOutOfService(KioskError):
    code = "locker_out_of_service"
    default_message = "This locker is out of service. A technician has been called."


class LockerNotEmpty(KioskError):
    code = "locker_not_empty"
    default_message = "The locker may still hold a parcel; check it before returning it to service."


class HardwareError(KioskError):
    code = "hardware_error"
    default_message = "The lock controller did not answer. A technician has been called."


# --- records ----------------------------------------------------------------


class NotFound(KioskError):
    code = "not_found"
    default_message = "No such record."


class InvalidState(KioskError):
    code = "invalid_state"
    default_message = "That is not possible in the current state."


class Conflict(KioskError):
    code = "conflict"
    default_message = "A different record with the same id already exists."


class CodeCollision(KioskError):
    code = "code_collision"
    default_message = "That code is already in use by another active parcel; draw a new one."


class ConcurrentUpdate(KioskError):
    code = "concurrent_update"
    default_message = "The record changed while it was being updated; try again."


class BadRequest(KioskError):
    code = "bad_request"
    default_message = "The request is malformed."


class LedgerError(KioskError):
    code = "ledger_error"
    default_message = "The ledger file is damaged or unreadable."


class ConfigError(KioskError):
    """A config problem, always naming the file, the key and the reason."""

    code = "config_error"

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}", file=file, key=key, reason=reason)
        self.file = file
        self.key = key
        self.reason = reason
