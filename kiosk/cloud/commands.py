"""Signed commands from the cloud: verify, apply once through the locker service, answer.

One command, one ledger transaction: the inbox is checked (a repeated `jti`
is answered with the original result and changes nothing), the command is
applied inside a savepoint (a refused command leaves no trace but its
answer), the `jti` and result go into the inbox and the `command.result`
event into the outbox, and all of it commits together.

A token that fails verification changes nothing at all: it is not put in
the inbox (a forger must not be able to claim a real command's `jti`), and
is answered with `ok: false` only where a `jti` can be read, at most
`REJECT_ANSWERS_PER_MIN` a minute. `door.open` is the one command that waits
on hardware: its inbox row is written after the door attempt, with a marker
row before it (committed in the door journal's own transaction, the one
commit before the pulse), so a command interrupted by a crash is answered
`interrupted` on redelivery instead of opening the door a second time.

Remote door openings are rationed from the ledger (`DoorLimits`): only a
door that opened uses a slot, and a restart does not give any back.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from kiosk.clock import Clock, from_text
from kiosk.cloud.tokens import Command, TokenRejected, Verifier
from kiosk.domain.errors import KioskError
from kiosk.domain.sizes import Size
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService

log = logging.getLogger(__name__)

RESULT = "command.result"
REJECT_ANSWERS_PER_MIN = 60
NOT_RECORDED = frozenset({"malformed", "rate_limited"})
_PENDING = "#pending"
#: The actor of every remote command in the ledger is `cloud:<jti>`.
CLOUD_ACTOR = "cloud:"


class Malformed(KioskError):
    code = "malformed"
    default_message = "The command's cmd or args are not what the contract says."


class RateLimited(KioskError):
    code = "rate_limited"
    default_message = "Too many remote door openings; try again shortly."


def result(command_id: str, cmd: str | None, error: KioskError | None = None) -> dict[str, Any]:
    """The `command.result` body: `{"command_id", "cmd", "ok", "error": {"code", "message"}}`."""
    return {
        "command_id": command_id,
        "cmd": cmd,
        "ok": error is None,
        "error": None if error is None else {"code": error.code, "message": error.message},
    }


def refusal(code: str, message: str) -> KioskError:
    """A KioskError with a code of the MQTT contract that has no class of its own."""
    err = KioskError(message)
    err.code = code
    return err


class _Args:
    """Typed access to a command's `args`; anything missing or ill-typed is Malformed."""

    def __init__(self, args: Any) -> None:
        if not isinstance(args, dict):
            raise Malformed("args must be a JSON object.")
        self.args = args

    def text(self, name: str, optional: bool = False) -> str:
        value = self.args.get(name)
        if optional and value in (None, ""):
            return ""
        if not isinstance(value, str) or not value or len(value) > 256:
            raise Malformed(f"args.{name} must be a non-empty string.")
        return value

    def flag(self, name: str) -> bool:
        value = self.args.get(name)
        if not isinstance(value, bool):
            raise Malformed(f"args.{name} must be true or false.")
        return value

    def time(self, name: str, optional: bool = False):  # type: ignore[no-untyped-def]
        text = self.text(name, optional)
        if not text:
            return None
        try:
            return from_text(text)
        except ValueError:
            raise Malformed(f"args.{name} must be an RFC 3339 time with an offset.") from None

    def size(self, name: str) -> Size:
        try:
            return Size(self.text(name))
        except ValueError:
            raise Malformed(f"args.{name} must be S, M or L.") from None


@dataclass(frozen=True)
class DoorLimits:
    """Remote door openings: at most `per_hour` per site in any rolling hour, one per label
    per `label_s` (`per_hour` is policy.remote_opens_per_hour).

    Counted from the doors that did open (the ledger's `door.opened` audit rows
    of `cloud:` actors), on the wall clock: a refused command (unknown label,
    locker in use, a door that stayed shut) uses no slot, and a restart gives
    none back.
    """

    per_hour: int = 10
    label_s: float = 30.0
    window: ClassVar[timedelta] = timedelta(hours=1)

    def check(self, opened: int, label_last: datetime | None, label: str, now: datetime) -> None:
        """RateLimited unless `label` may open now; `opened`: the doors opened remotely in
        the last hour, `label_last`: when `label`'s last was in that hour (None: it was not)."""
        if opened >= self.per_hour:
            raise RateLimited(
                f"At most {self.per_hour} remote door openings an hour "
                "(policy.remote_opens_per_hour)."
            )
        if label_last is not None and (now - label_last).total_seconds() < self.label_s:
            raise RateLimited(
                f"Locker {label} was opened remotely less than {self.label_s:.0f} s ago."
            )


@dataclass(frozen=True)
class Outcome:
    """What happened to one message (for the link's log and for tests)."""

    command_id: str | None
    body: dict[str, Any] | None  # the command.result queued, None when dropped
    replay: bool = False


class CommandHandler:
    def __init__(
        self,
        service: LockerService,
        ledger: Ledger,
        verifier: Verifier,
        clock: Clock,
        door_limits: DoorLimits | None = None,
        reject_answers_per_min: int = REJECT_ANSWERS_PER_MIN,
    ) -> None:
        self.service = service
        self.ledger = ledger
        self.verifier = verifier
        self.clock = clock
        self.door_limits = door_limits or DoorLimits()
        self.reject_answers_per_min = reject_answers_per_min
        self._rejects: deque[float] = deque()
        self._verified_jti: str | None = None
        self._apply: dict[str, Callable[[_Args, str], None]] = {
            "reservation.create": self._reservation_create,
            "reservation.cancel": self._reservation_cancel,
            "parcel.extend": self._parcel_extend,
            "parcel.schedule_return": self._schedule_return,
            "locker.set_service": self._set_service,
            "technician.set_pin": self._set_pin,
            "code.reset_lockout": self._reset_lockout,
        }

    async def handle(self, payload: bytes) -> Outcome:
        """Verify, apply, answer. Never raises: a failure of our own is answered, not recorded."""
        self._verified_jti = None
        try:
            return await self._handle(payload)
        except Exception:
            # Not recorded in the inbox: the cloud may retry the same jti.
            jti = self._verified_jti
            log.exception("command %s failed inside the kiosk", jti)
            if jti is None:
                return Outcome(None, None)
            body = result(jti, None, refusal("internal_error", "The kiosk failed; retry later."))
            try:
                with self.ledger.tx():
                    self.ledger.outbox.add(self.clock.now(), RESULT, body)
            except Exception:
                log.exception("could not queue the answer to command %s", jti)
                return Outcome(jti, None)
            return Outcome(jti, body)

    async def _handle(self, payload: bytes) -> Outcome:
        try:
            command = self.verifier.verify(payload, self.clock.now())
        except TokenRejected as exc:
            return self._reject(exc)
        self._verified_jti = command.jti
        if command.cmd == "door.open":
            return await self._door_open(command)
        return self._apply_once(command)

    def _apply_once(self, command: Command) -> Outcome:
        with self.ledger.tx():
            replay = self._replay(command.jti)
            if replay is not None:
                return replay
            cmd = command.cmd if isinstance(command.cmd, str) else None
            error: KioskError | None = None
            try:
                apply = self._apply.get(cmd or "")
                if apply is None:
                    raise Malformed(f"Unknown command {str(command.cmd)[:64]!r}.")
                with self.ledger.tx():  # a savepoint: a refusal leaves nothing behind
                    apply(_Args(command.args), command.jti)
            except KioskError as exc:
                error = exc
            return self._answer(command.jti, cmd, error)

    # --- answers ------------------------------------------------------------

    def _answer(self, jti: str, cmd: str | None, error: KioskError | None) -> Outcome:
        """Inside the caller's transaction: the command.result event, and the inbox row.

        A malformed or rate-limited command is answered but not recorded: it
        changed nothing, and the cloud may send the same jti again, fixed or later.
        """
        body = result(jti, cmd, error)
        now = self.clock.now()
        if error is None or error.code not in NOT_RECORDED:
            self.ledger.outbox.inbox_put(jti, cmd or "", error is None, body, now)
        self.ledger.outbox.add(now, RESULT, body)
        if error is not None:
            log.info("command %s (%s) refused: %s %s", jti, cmd, error.code, error.message)
        return Outcome(jti, body)

    def _replay(self, jti: str) -> Outcome | None:
        original = self.ledger.outbox.inbox_result(jti)
        if original is None:
            return None
        self.ledger.outbox.add(self.clock.now(), RESULT, original)
        log.info("command %s seen before; answered with its original result", jti)
        return Outcome(jti, original, replay=True)

    def _reject(self, exc: TokenRejected) -> Outcome:
        if exc.jti is None:
            log.warning("dropped a command with no readable jti: %s (%s)", exc.code, exc.message)
            return Outcome(None, None)
        now = self.clock.monotonic()
        while self._rejects and now - self._rejects[0] >= 60:
            self._rejects.popleft()
        if len(self._rejects) >= self.reject_answers_per_min:
            log.warning("rejected command %s (%s), not answered: too many", exc.jti, exc.code)
            return Outcome(exc.jti, None)
        self._rejects.append(now)
        body = result(exc.jti, None, refusal(exc.code, exc.message))
        with self.ledger.tx():
            self.ledger.outbox.add(self.clock.now(), RESULT, body)
        log.warning("rejected command %s: %s (%s)", exc.jti, exc.code, exc.message)
        return Outcome(exc.jti, body)

    # --- door.open: waits on the door, so two transactions around it --------

    async def _door_open(self, command: Command) -> Outcome:
        jti = command.jti
        with self.ledger.tx():
            replay = self._replay(jti)
            if replay is not None:
                return replay
            if self.ledger.outbox.inbox_result(jti + _PENDING) is not None:
                error = refusal(
                    "interrupted",
                    "The kiosk restarted while opening this door; check the door before "
                    "sending a new command.",
                )
                return self._answer(jti, "door.open", error)
            try:
                args = _Args(command.args)
                label, reason = args.text("label"), args.text("reason")
                self.ledger.parcels.locker(label)  # NotFound before the rate is looked at
                self._check_door_rate(label)
            except KioskError as exc:
                return self._answer(jti, "door.open", exc)
        marker = result(jti, "door.open", None) | {"ok": False, "pending": True}

        def mark() -> None:  # committed with the door journal, before the pulse
            self.ledger.outbox.inbox_put(
                jti + _PENDING, "door.open", False, marker, self.clock.now()
            )

        error: KioskError | None = None
        try:
            await self.service.open_door(label, reason, actor=f"cloud:{jti}", journal_with=mark)
        except KioskError as exc:
            error = exc
        with self.ledger.tx():
            return self._answer(jti, "door.open", error)

    def _check_door_rate(self, label: str) -> None:
        now = self.clock.now()
        since = now - self.door_limits.window
        opened, label_last = self.service.doors_opened_by(CLOUD_ACTOR, since, label)
        self.door_limits.check(opened, label_last, label, now)

    # --- the commands ---------------------------------------------------------

    def _reservation_create(self, a: _Args, jti: str) -> None:
        self.service.create_reservation(
            a.text("parcel_id"),
            a.size("size"),
            a.text("delivery_digest"),
            a.text("pickup_digest"),
            order_id=a.text("order_id", optional=True),
            deliver_by=a.time("deliver_by", optional=True),
        )

    def _reservation_cancel(self, a: _Args, jti: str) -> None:
        self.service.cancel_reservation(a.text("parcel_id"), actor=f"cloud:{jti}")

    def _parcel_extend(self, a: _Args, jti: str) -> None:
        self.service.extend(a.text("parcel_id"), a.time("expires_at"), actor=f"cloud:{jti}")

    def _schedule_return(self, a: _Args, jti: str) -> None:
        self.service.schedule_return(
            a.text("parcel_id"), a.text("return_digest"), actor=f"cloud:{jti}"
        )

    def _set_service(self, a: _Args, jti: str) -> None:
        self.service.set_service(
            a.text("label"), a.flag("in_service"), a.text("reason"), actor=f"cloud:{jti}"
        )

    def _set_pin(self, a: _Args, jti: str) -> None:
        self.service.set_pin(
            a.text("technician_id"), pin_digest=a.text("pin_digest"), actor=f"cloud:{jti}"
        )

    def _reset_lockout(self, a: _Args, jti: str) -> None:
        self.service.reset_lockout(actor=f"cloud:{jti}")
