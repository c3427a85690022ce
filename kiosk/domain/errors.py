"""One error hierarchy for the application, each with a stable `code` and an `exit_code`.

`code` values are a contract (API replies, `kiosk code --json`, MQTT
`command.result`). `message` is written for the person at the keypad or the
operator: it says what happened and what to do next. `exit_code` is what the
`kiosk` command exits with when the error ends it: 1 (refused) unless the
error says otherwise; the daemon's start-up failures use sysexits(3) codes.
"""

from __future__ import annotations

from typing import Any

#: Exit codes of the `kiosk` command: the project's own, then sysexits(3) for `kiosk run`.
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_DAEMON = 0, 1, 2, 3
EX_UNAVAILABLE, EX_SOFTWARE, EX_CANTCREAT, EX_CONFIG = 69, 70, 73, 78
#: A stdout closed under the command (`kiosk status | head`): 128 + SIGPIPE, as a shell
#: reports any tool that SIGPIPE ended.
EXIT_CLOSED_STDOUT = 141


class KioskError(Exception):
    """Base of every application error."""

    code = "kiosk_error"
    default_message = "Something went wrong."
    exit_code = EXIT_REFUSED

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


# --- the daemon cannot start (`kiosk run`; sysexits codes) -------------------


class StartError(KioskError):
    """`kiosk run` cannot start. The message names the thing, the reason and what to do."""

    code = "cannot_start"
    default_message = "The daemon cannot start."
    exit_code = EX_SOFTWARE


class StartConfigError(StartError):
    """The config is wrong, or does not match the hardware it describes (EX_CONFIG)."""

    code = "config_mismatch"
    exit_code = EX_CONFIG


class DeviceUnavailable(StartError):
    """A device or service the config names is not there or cannot be used (EX_UNAVAILABLE)."""

    code = "device_unavailable"
    exit_code = EX_UNAVAILABLE


class CannotCreate(StartError):
    """A file, folder or socket the daemon needs cannot be created (EX_CANTCREAT)."""

    code = "cannot_create"
    exit_code = EX_CANTCREAT


class AlreadyRunning(CannotCreate):
    """Another daemon holds the socket or the ledger: this one would fight it for both."""

    code = "already_running"


class LedgerTooNew(StartConfigError, LedgerError):
    """The ledger's schema is newer than this program's migrations: a newer version wrote it."""

    code = "ledger_too_new"


class DiskFull(CannotCreate, LedgerError):
    """No room on the ledger's disk: not damage, so no restore; free space instead.

    A LedgerError too: at run time a write that finds the disk full is refused like
    any other ledger write that fails, and nothing is changed.
    """

    code = "disk_full"
