"""Technician PINs: set (digest only), and checked under the same limiter rules as codes."""

from __future__ import annotations

import contextlib
from typing import Any

from kiosk.domain.codes import code_digest, is_digest
from kiosk.domain.errors import BadRequest, InvalidCode, LockedOut, NotFound, SiteLocked
from kiosk.domain.pins import TOO_SHORT, is_short_pin_digest, pin_digits
from kiosk.service.attempts import audit_failure
from kiosk.service.context import ServiceContext

PIN_TABLE = "pin_limiter"


class Technicians:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def set_pin(
        self,
        technician_id: str,
        pin: str | None = None,
        pin_digest: str | None = None,
        actor: str = "technician",
    ) -> None:
        """Store a PIN's digest (from a PIN typed here, or a digest the cloud sent)."""
        if not technician_id or len(technician_id) > 64:
            raise BadRequest("technician_id must be 1 to 64 characters.")
        if (pin is None) == (pin_digest is None):
            raise BadRequest("Give a PIN or its digest, not both.")
        digest = pin_digest if pin is None else code_digest(self.ctx.code_key, pin_digits(pin))
        if not is_digest(digest):
            raise BadRequest("pin_digest is not a digest (43 base64url characters).")
        if pin is None and is_short_pin_digest(self.ctx.code_key, digest):
            raise BadRequest(f"pin_digest is the digest of a too short PIN. {TOO_SHORT}")
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            ledger.settings.set_technician_pin(technician_id, digest, now)
            ledger.audit.record(now, actor, "technician.set_pin", technician_id)

    def roster(self, actor: str) -> list[dict[str, Any]]:
        """Every technician (name, created, last login), audited as `technician.list`."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            rows = []
            for tech in ledger.settings.technicians():
                created, last_login = ledger.audit.technician_dates(tech["name"])
                rows.append(
                    {
                        "name": tech["name"],
                        "created": created or tech["updated_at"],
                        "last_login": last_login,
                    }
                )
            ledger.audit.record(now, actor, "technician.list", self.ctx.site_id, count=len(rows))
        return rows

    def remove(self, technician_id: str, actor: str) -> None:
        """Delete a technician: their PIN no longer logs in. NotFound if there is none."""
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            if not ledger.settings.remove_technician(technician_id):
                raise NotFound(
                    f"There is no technician {technician_id!r} (see `kiosk tech list`).",
                    technician_id=technician_id,
                )
            ledger.audit.record(now, actor, "technician.remove", technician_id)

    def verify(self, pin: str) -> str:
        """The technician whose PIN this is, or InvalidCode / LockedOut / SiteLocked."""
        ctx, ledger = self.ctx, self.ctx.ledger
        now = ctx.clock.now()
        state = ledger.codes.limiter(PIN_TABLE)
        ctx.limiter.check(state, now)
        found = None
        with contextlib.suppress(BadRequest):  # a malformed PIN is a wrong PIN
            found = ledger.settings.technician_by_pin(code_digest(ctx.code_key, pin_digits(pin)))
        if found is not None:
            with ledger.tx():
                ledger.codes.put_limiter(ctx.limiter.on_success(state), PIN_TABLE)
                ledger.audit.record(now, f"technician:{found}", "technician.login", found)
            return found
        with ledger.tx():
            before = state
            state, locked_now = ctx.limiter.on_failure(before, now)
            ledger.codes.put_limiter(state, PIN_TABLE)
            audit_failure(ledger, now, "pin", ctx.site_id, before, state, "keypad")
            if locked_now:
                body = {"day": state.day, "failures": state.day_failures, "entry": "pin"}
                ledger.outbox.add(now, "code.lockout", body)
        if state.site_locked:
            raise SiteLocked("PIN entry is locked for today; support has been told.")
        if state.locked_until is not None and state.locked_until > now:
            wait = int((state.locked_until - now).total_seconds())
            raise LockedOut(f"Wrong PIN. Please wait {wait} seconds.", retry_after=wait)
        left = ctx.limiter.tries_left(state)
        raise InvalidCode(f"Wrong PIN. {left} tries left.", tries_left=left)

    def reset_lockout(self, actor: str) -> None:
        ledger, now = self.ctx.ledger, self.ctx.clock.now()
        with ledger.tx():
            ledger.codes.put_limiter(
                self.ctx.limiter.reset(ledger.codes.limiter(PIN_TABLE)), PIN_TABLE
            )
            ledger.audit.record(now, actor, "pin.lockout_reset", self.ctx.site_id)
