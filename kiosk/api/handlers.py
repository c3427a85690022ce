"""What each local API call does: argument checks, the role it needs, and the service call."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.api.protocol import API_VERSION
from kiosk.api.sessions import Sessions
from kiosk.api.visits import Visit, Visits
from kiosk.clock import to_text
from kiosk.domain.errors import BadRequest, KioskError
from kiosk.domain.sizes import Size
from kiosk.service.locker_service import LockerService
from kiosk.service.results import CodeResult

Handler = Callable[["Caller", dict[str, Any]], Awaitable[dict[str, Any]]]


class NotAllowed(KioskError):
    code = "not_allowed"
    default_message = "Log in as a technician first."


@dataclass
class Caller:
    """Who is asking: an admin peer (root or the daemon's own user) or anyone with a session."""

    admin: bool
    session: str | None = None
    technician_id: str | None = None


def _text(args: dict[str, Any], name: str, required: bool = True, limit: int = 200) -> str:
    value = args.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise BadRequest(f"{name} must be a non-empty string of at most {limit} characters.")
    return value


def _stamp(moment: datetime | None) -> str | None:
    return to_text(moment) if moment is not None else None


def _whole(args: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}.")
    return value


def _whole_s(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds)


def _flag(args: dict[str, Any], name: str) -> bool:
    value = args.get(name)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false.")
    return value


@dataclass
class Api:
    service: LockerService
    sessions: Sessions
    site_id: str
    online: Callable[[], bool] = lambda: False
    last_contact: Callable[[], datetime | None] = lambda: None
    #: Whether this bank has a cloud link at all ([mqtt] configured): no link, no alarm.
    cloud: bool = False
    down_for_s: Callable[[], float | None] = lambda: None
    help_phone: str = ""  # [site] help_phone / help_text: the keypad's Help screen
    help_text: str = ""
    calls: dict[str, tuple[str, Handler]] = field(default_factory=dict)
    visits: Visits = field(default_factory=lambda: Visits(time.monotonic))

    def __post_init__(self) -> None:
        public = {
            "hello": self.hello,
            "status": self.status,
            "help": self.help,
            "layout": self.layout,
            "doors": self.doors,
            "code.submit": self.code_submit,
            "courier.doesnt_fit": self.doesnt_fit,
            "courier.cancel": self.courier_cancel,
            "courier.done": self.courier_done,
            "door.reopen": self.door_reopen,
            "door.report": self.door_report,
            "tech.login": self.tech_login,
            "tech.logout": self.tech_logout,
        }
        technician = {
            "parcels": self.parcels,
            "parcels.announce": self.announce,
            "door.open": self.door_open,
            "locker.service": self.locker_service,
            "locker.check": self.locker_check,
            "audit.tail": self.audit_tail,
            "audit.verify": self.audit_verify,
            "selftest": self.selftest,
            "presence.check": self.presence_check,
            "backup": self.backup,
            "lockout.reset": self.lockout_reset,
            "health": self.health,
            "tech.set_pin": self.set_pin,
            "tech.list": self.tech_list,
            "tech.remove": self.tech_remove,
            "hardware.scan": self.hardware_scan,
            "hardware.map_open": self.hardware_map_open,
            "hardware.map_entries": self.hardware_map_entries,
        }
        self.calls = {name: ("public", fn) for name, fn in public.items()}
        self.calls.update({name: ("technician", fn) for name, fn in technician.items()})

    async def dispatch(self, caller: Caller, call: str, args: dict[str, Any]) -> dict[str, Any]:
        entry = self.calls.get(call)
        if entry is None:
            raise BadRequest(f"unknown call {call!r}", call=call)
        role, handler = entry
        if role == "technician" and not caller.admin:
            session = self.sessions.touch(caller.session)
            if session is None:
                raise NotAllowed()
            caller.technician_id = session.technician_id
        return await handler(caller, args)

    # --- public -------------------------------------------------------------

    async def hello(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "api": API_VERSION,
            "version": __version__,
            "site": self.site_id,
            "admin": caller.admin,
        }

    async def status(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        # Parcel ids only for the technician's shell or a live technician session: a
        # public caller sending any `session` string must not see them.
        show_parcels = caller.admin or self.sessions.live(caller.session) is not None
        presence = self.service.presence()
        lockers = [
            {
                "label": lk.label,
                "size": lk.size.value,
                "status": lk.status.value,
                "parcel_id": lk.parcel_id if show_parcels else None,
                "needs_check": lk.needs_check,
                "presence": presence.get(lk.label),
            }
            for lk in self.service.lockers()
            if lk.in_config
        ]
        return {
            "site": self.site_id,
            "online": self.online(),
            "cloud": self.cloud,
            "offline_s": _whole_s(self.down_for_s()) if self.cloud else None,
            "lockers": lockers,
            "outbox_depth": self.service.outbox_depth(),
            "last_contact": _stamp(self.last_contact()),
            "site_locked": self.service.site_locked(),
        }

    async def help(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """Who to call: the site's help phone and text ("" when not configured)."""
        return {"phone": self.help_phone, "text": self.help_text}

    async def layout(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """The bank's front as a grid: each locker's column, row and rows (1-based)."""
        return {"cells": [cell.to_dict() for cell in self.service.layout()]}

    async def doors(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        supervisor = self.service.supervisor
        presence = self.service.presence()
        return {
            "doors": [
                {
                    "label": label,
                    "door": supervisor.state(label).value,
                    "presence": presence.get(label),
                }
                for label in self.service.door_labels()
            ]
        }

    async def code_submit(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        code = args.get("code")
        if not isinstance(code, str) or len(code) > 32:
            raise BadRequest("code must be a string of digits.")
        source = "cli" if caller.admin else "keypad"
        return self._with_visit(await self.service.submit_code(code, source))

    def _with_visit(self, result: CodeResult) -> dict[str, Any]:
        """The answer, with the token that lets this visit reopen or report its door."""
        token = self.visits.grant(result.locker, result.role, result.parcel_id)
        return {**result.to_dict(), "visit": token}

    def _visit(self, args: dict[str, Any], what: str) -> Visit:
        visit = self.visits.take(args.get("visit"), what)
        if visit is None or visit.role not in ("courier", "customer"):
            raise NotAllowed("Only the visit that opened this door can ask that, once.")
        return visit

    async def door_reopen(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """The visit's door again: `why` "didnt_open" (once) or "left_something" (pickup, 30 s)."""
        why = _text(args, "why", limit=32)
        visit = self._visit(args, why)
        actor = f"{visit.role}:keypad"
        result = await self.service.reopen(visit.locker, visit.parcel_id, visit.role, why, actor)
        return result.to_dict()

    async def door_report(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """Report the visit's door: a technician is called; a courier gets another locker."""
        visit = self._visit(args, "report")
        actor = f"{visit.role}:keypad"
        moved = await self.service.report_problem(visit.locker, visit.parcel_id, visit.role, actor)
        return {
            "reported": visit.locker,
            "next": self._with_visit(moved) if moved is not None else None,
        }

    async def doesnt_fit(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        return (await self.service.doesnt_fit(_text(args, "locker", limit=16))).to_dict()

    async def courier_cancel(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        return (await self.service.courier_cancel(_text(args, "locker", limit=16))).to_dict()

    async def courier_done(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """Where the courier's locker stands: has its closing been recorded yet?"""
        label = _text(args, "locker", limit=16)
        locker = self.service.locker(label)
        return {
            "locker": label,
            "status": locker.status.value,
            "finished": not self.service.door_busy(label),
            "door": self.service.supervisor.state(label).value,
        }

    async def tech_login(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        pin = args.get("pin")
        if not isinstance(pin, str) or len(pin) > 32:
            raise BadRequest("pin must be a string of digits.")
        technician_id = self.service.verify_pin(pin)
        session = self.sessions.open(technician_id)
        return {
            "session": session.token,
            "technician_id": technician_id,
            "idle_s": self.sessions.idle_s,
        }

    async def tech_logout(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        return {"closed": self.sessions.close(caller.session)}

    # --- technician ---------------------------------------------------------

    def _actor(self, caller: Caller) -> str:
        return f"technician:{caller.technician_id}" if caller.technician_id else "technician:local"

    async def parcels(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        since = self.service.clock.now() - timedelta(days=30)
        return {
            "parcels": [
                {
                    "parcel_id": p.parcel_id,
                    "status": p.status.value,
                    "size": p.size.value,
                    "locker": p.locker,
                    "needs_check": p.needs_check,
                    "expires_at": p.expires_at.isoformat() if p.expires_at else None,
                }
                for p in self.service.parcels(since)
            ]
        }

    async def announce(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        try:
            size = Size.parse(_text(args, "size", limit=8))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        parcel_id = args.get("parcel_id")
        if parcel_id is not None and not isinstance(parcel_id, str):
            raise BadRequest("parcel_id must be a string.")
        return self.service.announce(size, parcel_id).to_dict()

    async def door_open(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        label, reason = _text(args, "locker", limit=16), _text(args, "reason")
        return (await self.service.open_door(label, reason, self._actor(caller))).to_dict()

    async def locker_service(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        label, reason = _text(args, "locker", limit=16), _text(args, "reason")
        row = self.service.set_service(
            label, _flag(args, "in_service"), reason, self._actor(caller)
        )
        return {"label": row.label, "status": row.status.value}

    async def locker_check(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        label, reason = _text(args, "locker", limit=16), _text(args, "reason")
        row = self.service.resolve_check(
            label, _flag(args, "parcel_inside"), reason, self._actor(caller)
        )
        return {"label": row.label, "status": row.status.value}

    async def audit_tail(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        count = args.get("n", 20)
        if not isinstance(count, int) or not 1 <= count <= 1000:
            raise BadRequest("n must be a whole number from 1 to 1000.")
        return {"rows": self.service.audit_tail(count)}

    async def audit_verify(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        result = self.service.verify_audit()
        return {"ok": result.ok, "rows": result.rows, "problem": result.problem}

    async def selftest(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """Read every door sensor a few times; report what each says (a sweep, no unlocking).

        With `locker`, only that door (its board alone is read): a caller that
        sweeps door by door can show real progress. Presence sensors are read in
        the same sweeps: `presence` is what each said, `presence_problem` why it
        is a fault (a sensor reading occupied in a free locker, say), else "".
        """
        label = self._locker_arg(args)
        readings: dict[str, list[bool | None]] = {}
        seen = await self.service.read_sensors(label, presence=readings)
        checks = {c.label: c for c in self.service.judge_presence(readings)}
        doors = []
        for name, values in seen.items():
            check = checks.get(name)
            problem = check.problem if check else ""
            doors.append(
                {
                    "label": name,
                    "readings": sorted(values),
                    "ok": len(values) == 1 and "unknown" not in values and not problem,
                    "presence": list(check.readings) if check else [],
                    "presence_problem": problem,
                }
            )
        return {"doors": doors, "ok": all(d["ok"] for d in doors)}

    async def presence_check(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """Every presence sensor (or `locker`'s) over a short sweep, judged against the ledger."""
        checks = await self.service.presence_checks(self._locker_arg(args))
        return {"lockers": [c.to_dict() for c in checks], "ok": all(c.ok for c in checks)}

    def _locker_arg(self, args: dict[str, Any]) -> str | None:
        if "locker" not in args:
            return None
        label = _text(args, "locker", limit=16)
        if label not in self.service.door_labels():
            raise BadRequest(f"There is no locker {label!r}.")
        return label

    async def backup(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        text = _text(args, "dest", limit=4096)
        dest = Path(text)
        if "\0" in text or not dest.is_absolute():
            raise BadRequest("dest must be an absolute file path (the daemon has its own cwd).")
        if dest.exists():
            raise BadRequest(f"{dest} exists already; choose a new file name.")
        try:
            self.service.backup(dest)
        except (OSError, sqlite3.Error) as exc:
            raise BadRequest(f"Cannot write a backup to {dest}: {exc}.") from None
        return {"dest": str(dest), "bytes": dest.stat().st_size}

    async def lockout_reset(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        self.service.reset_lockout(self._actor(caller))
        return {"reset": True}

    async def set_pin(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        technician_id = _text(args, "technician_id", limit=64)
        pin = args.get("pin")
        if not isinstance(pin, str):
            raise BadRequest("pin must be a string of digits.")
        self.service.set_pin(technician_id, pin=pin, actor=self._actor(caller))
        return {"technician_id": technician_id}

    async def tech_list(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        return {"technicians": self.service.technicians(self._actor(caller))}

    async def tech_remove(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        technician_id = _text(args, "technician_id", limit=64)
        self.service.remove_technician(technician_id, self._actor(caller))
        # Their PIN is gone; so are the sessions it opened.
        return {
            "technician_id": technician_id,
            "sessions_closed": self.sessions.close_all(technician_id),
        }

    async def health(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        boards = [
            {
                "bus": b.bus,
                "unit": b.unit,
                "kind": b.kind,
                "channels": b.channels,
                "online": b.online,
                "counters": dict(b.counters),
                "presence_sensors": b.presence_sensors,
            }
            for b in self.service.boards()
        ]
        return {"boards": boards, "outbox_depth": self.service.outbox_depth()}

    # --- commissioning (kiosk hardware scan / map) -----------------------------

    async def hardware_scan(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """The boards answering on `bus` among units `first`..`last` (reads only)."""
        bus = _text(args, "bus", limit=64)
        first, last = _whole(args, "first", 1, 247, 1), _whole(args, "last", 1, 247, 247)
        if first > last:
            raise BadRequest("first must not be above last.")
        timeout_ms = _whole(args, "timeout_ms", 5, 5000, 40)
        units = range(first, last + 1)
        found = await self.service.commissioning.scan(bus, units, timeout_ms / 1000)
        return {"bus": bus, "first": first, "last": last, "boards": found}

    async def hardware_map_open(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """Open channel `channel` of board `unit` on `bus` (audited as hardware.map_open)."""
        bus = _text(args, "bus", limit=64)
        unit, channel = _whole(args, "unit", 0, 247), _whole(args, "channel", 0, 63)
        profile = _text(args, "profile", limit=32) if "profile" in args else "kiosk-v1"
        return await self.service.commissioning.map_open(
            bus, unit, channel, profile, self._actor(caller)
        )

    async def hardware_map_entries(self, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        """The [[board]] / [[locker]] TOML of a mapped board, checked against the config."""
        lockers = args.get("lockers")
        if not isinstance(lockers, list) or not all(isinstance(x, dict) for x in lockers):
            raise BadRequest("lockers must be a list of {label, size, channel, column?, row?}.")
        toml = self.service.commissioning.map_entries(
            _text(args, "bus", limit=64),
            _whole(args, "unit", 0, 247),
            _text(args, "profile", limit=32),
            _whole(args, "channels", 1, 64),
            lockers[:64],
            ir_sensors=args.get("ir_sensors") is True,
        )
        return {"toml": toml}
