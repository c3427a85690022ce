"""Commands that succeed over a real broker (cancel, extend, return, PIN), and `kiosk-cloud`."""

from __future__ import annotations

import asyncio
import json
import queue
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
from cloudrig import PREFIX, SITE, CloudRig, Contract, mqtt_config, wait_for
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiError
from kiosk.clock import from_text
from kiosk.domain.codes import code_digest, draw_code
from kiosk.domain.errors import CodeExpired, InvalidCode, InvalidState, NotYetDelivered
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk_cloud.client import CloudClient, Message
from kiosk_cloud.signing import sign

#: A technician's PIN: ten digits, so no timestamp or seq in the ledger spells it by chance.
PIN = "8406139275"


# --- the cloud's end: signs on the contract, keeps every message it receives ---


@dataclass
class CloudSide:
    """Unlike `result_of`, which drops what it skips, this keeps every message to check later."""

    client: CloudClient
    key: Ed25519PrivateKey
    contract: Contract
    seen: list[Message] = field(default_factory=list)
    drawn: set[str] = field(default_factory=set)

    def draw(self) -> str:
        """A 6-digit code no other code of this test has (a repeat would be a code_collision)."""
        code = draw_code(6, lambda c: c in self.drawn)
        self.drawn.add(code)
        return code

    def events(self) -> list[dict[str, Any]]:
        while True:
            try:
                self.seen.append(self.client.messages.get_nowait())
            except queue.Empty:
                break
        return [m.json() for m in self.seen if m.topic.endswith("/events")]

    def answer(self, jti: str) -> dict[str, Any] | None:
        for event in self.events():
            body = event.get("body") or {}
            if event.get("type") == "command.result" and body.get("command_id") == jti:
                return body
        return None

    async def command(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        """Sign (claims checked against the contract), publish, and wait for the answer."""
        jti, token = sign(self.key, SITE, cmd, args, datetime.now(UTC))
        self.contract.check("CommandToken", token)
        self.contract.check("CommandClaims", jwt.decode(token, options={"verify_signature": False}))
        topic = self.client.topics(SITE).commands
        await asyncio.to_thread(self.client.publish, topic, token.encode("ascii"))
        return await wait_for(lambda: self.answer(jti))

    async def succeed(self, cmd: str, args: dict[str, Any]) -> str:
        """`command` that must be answered ok; returns its jti."""
        body = await self.command(cmd, args)
        assert body == {"command_id": body["command_id"], "cmd": cmd, "ok": True, "error": None}
        return str(body["command_id"])

    async def settle(self, rig: CloudRig) -> list[dict[str, Any]]:
        """Every event the kiosk queued, arrived: all messages checked, events in seq order.

        Returns the events once each (a QoS 1 resend must be the same event).
        """
        await wait_for(lambda: rig.ledger.outbox.depth() == 0)
        last = rig.ledger.outbox.last_seq()
        await wait_for(lambda: any(e["seq"] == last for e in self.events()))
        unique: dict[int, dict[str, Any]] = {}
        for message in self.seen:
            name = message.topic.rsplit("/", 1)[-1]
            if name == "commands":  # our own, back through the `#` subscription
                self.contract.check("CommandToken", message.payload.decode("ascii"))
            elif name == "events":
                event = message.json()
                self.contract.check_event(event)
                assert unique.setdefault(event["seq"], event) == event, event
            else:
                self.contract.check({"state": "State", "status": "Status"}[name], message.json())
        seqs = list(unique)  # in order of first arrival
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gap or reorder: {seqs}"
        return list(unique.values())


@pytest.fixture
def side(cloud: CloudClient, cloud_key: Ed25519PrivateKey, contract: Contract) -> CloudSide:
    return CloudSide(cloud, cloud_key, contract)


# --- preconditions, through the cloud and the keypad ---------------------------


@dataclass(frozen=True)
class Codes:
    delivery: str
    pickup: str


async def reserve(side: CloudSide, rig: CloudRig, parcel_id: str, size: str) -> Codes:
    key = rig.daemon.service.ctx.code_key
    codes = Codes(side.draw(), side.draw())
    args = {
        "parcel_id": parcel_id,
        "order_id": f"O-{parcel_id}",
        "size": size,
        "deliver_by": None,
        "delivery_digest": code_digest(key, codes.delivery),
        "pickup_digest": code_digest(key, codes.pickup),
    }
    await side.succeed("reservation.create", args)
    assert rig.ledger.parcels.get(parcel_id).status is ParcelStatus.EXPECTED
    return codes


async def deliver(rig: CloudRig, parcel_id: str, code: str) -> str:
    """A courier types the code and shuts the door; returns the locker."""
    opened = await rig.daemon.service.submit_code(code)
    assert (opened.role, opened.parcel_id) == ("courier", parcel_id)
    rig.doors.close(opened.locker)
    await wait_for(lambda: rig.ledger.parcels.get(parcel_id).status is ParcelStatus.DELIVERED)
    return opened.locker


def expire(rig: CloudRig, parcel_id: str) -> None:
    """Time passes (a sweep at the pickup deadline): EXPIRED, still inside its locker."""
    deadline = rig.ledger.parcels.get(parcel_id).expires_at
    assert deadline is not None
    assert rig.daemon.service.sweep(deadline).expired == 1
    parcel = rig.ledger.parcels.get(parcel_id)
    assert parcel.status is ParcelStatus.EXPIRED and parcel.locker is not None
    assert rig.ledger.parcels.locker(parcel.locker).status is LockerStatus.OCCUPIED


async def refused(rig: CloudRig, code: str) -> str:
    """The error code a typed code gets; it must open no door."""
    pulses = dict(rig.doors.pulses)
    with pytest.raises((InvalidCode, CodeExpired, NotYetDelivered, InvalidState)) as err:
        await rig.daemon.service.submit_code(code)
    assert dict(rig.doors.pulses) == pulses
    return str(err.value.code)


def audit_actions(rig: CloudRig, subject: str) -> list[tuple[str, str]]:
    rows = rig.ledger.db.query(
        "SELECT actor, action FROM audit WHERE subject = ? ORDER BY id", (subject,)
    )
    return [(r["actor"], r["action"]) for r in rows]


# --- reservation.cancel --------------------------------------------------------


async def test_cancel_releases_the_parcel_and_its_codes_open_nothing(rig, side):
    p1 = await reserve(side, rig, "P-CANCEL", "M")
    p2 = await reserve(side, rig, "P-NEXT", "M")
    assert await refused(rig, p1.pickup) == "not_delivered"  # known before the cancel
    # its courier opened B-1 and backed out: the cloud cannot pull the locker from under
    # an open door, so cancel waits until the door is shut and the locker released
    opened = await rig.daemon.service.submit_code(p1.delivery)
    assert opened.locker == "B-1" and rig.ledger.parcels.locker("B-1").parcel_id == "P-CANCEL"
    busy = await side.command("reservation.cancel", {"parcel_id": "P-CANCEL"})
    assert busy["ok"] is False and busy["error"]["code"] == "invalid_state"
    await rig.daemon.service.courier_cancel("B-1")
    rig.doors.close("B-1")
    await wait_for(lambda: not rig.ledger.doors.unfinished())

    jti = await side.succeed("reservation.cancel", {"parcel_id": "P-CANCEL"})
    parcel = rig.ledger.parcels.get("P-CANCEL")
    assert (parcel.status, parcel.locker) == (ParcelStatus.CANCELLED, None)
    assert parcel.closed_at is not None
    assert rig.ledger.codes.of_parcel("P-CANCEL") == []
    assert all(lk.parcel_id != "P-CANCEL" for lk in rig.ledger.parcels.lockers())
    assert {lk.status for lk in rig.ledger.parcels.lockers()} == {LockerStatus.AVAILABLE}
    assert ("cloud:" + jti, "reservation.cancel") in audit_actions(rig, "P-CANCEL")
    # neither code is known any more (not "not delivered", not "already cancelled")
    assert await refused(rig, p1.delivery) == "invalid_code"
    assert await refused(rig, p1.pickup) == "invalid_code"
    # the locker it was given goes to the next courier of that size
    assert await deliver(rig, "P-NEXT", p2.delivery) == "B-1"

    events = await side.settle(rig)
    results = [e["body"] for e in events if e["type"] == "command.result"]
    assert [(b["cmd"], b["ok"]) for b in results] == [
        ("reservation.create", True),
        ("reservation.create", True),
        ("reservation.cancel", False),
        ("reservation.cancel", True),
    ]
    assert not any(
        e["body"].get("parcel_id") == "P-CANCEL" and e["type"].startswith("parcel.") for e in events
    )


# --- parcel.extend ---------------------------------------------------------------


async def test_extend_moves_the_pickup_deadline_by_what_was_asked(rig, side):
    codes = await reserve(side, rig, "P-EXTEND", "S")
    await deliver(rig, "P-EXTEND", codes.delivery)
    before = rig.ledger.parcels.get("P-EXTEND")
    old = before.expires_at
    assert old is not None
    service = rig.daemon.service
    assert service.sweep(old - timedelta(hours=1)).expiring == 1  # "one day left" went out
    assert rig.ledger.parcels.get("P-EXTEND").expiring_sent

    asked = old + timedelta(days=2)
    east = timezone(timedelta(hours=2))  # any RFC 3339 offset means the same instant
    jti = await side.succeed(
        "parcel.extend", {"parcel_id": "P-EXTEND", "expires_at": asked.astimezone(east).isoformat()}
    )
    after = rig.ledger.parcels.get("P-EXTEND")
    assert after.expires_at == asked and after.expires_at - old == timedelta(days=2)
    assert (after.status, after.locker, after.delivered_at) == (
        ParcelStatus.DELIVERED,
        before.locker,
        before.delivered_at,
    )
    assert after.expiring_sent is False  # a fresh warning is due before the new deadline
    assert ("cloud:" + jti, "parcel.extend") in audit_actions(rig, "P-EXTEND")

    # the sweeper keeps the new deadline, not the old one
    assert service.sweep(old + timedelta(minutes=1)).expired == 0
    assert rig.ledger.parcels.get("P-EXTEND").status is ParcelStatus.DELIVERED
    assert service.sweep(asked - timedelta(hours=1)).expiring == 1
    assert service.sweep(asked - timedelta(seconds=1)).expired == 0
    assert service.sweep(asked).expired == 1
    assert rig.ledger.parcels.get("P-EXTEND").status is ParcelStatus.EXPIRED

    events = await side.settle(rig)
    deadline_events = ("parcel.delivered", "parcel.expiring", "parcel.expired")
    mine = [e for e in events if e["body"].get("parcel_id") == "P-EXTEND"]
    assert [e["type"] for e in mine if e["type"] in deadline_events] == [
        "parcel.delivered",
        "parcel.expiring",
        "parcel.expiring",  # warned again: the deadline moved
        "parcel.expired",
    ]
    warnings = [from_text(e["body"]["expires_at"]) for e in mine if e["type"] == "parcel.expiring"]
    assert warnings == [old, asked]


# --- parcel.schedule_return --------------------------------------------------------


async def test_schedule_return_lets_a_courier_collect_the_expired_parcel(rig, side):
    codes = await reserve(side, rig, "P-RETURN", "L")
    label = await deliver(rig, "P-RETURN", codes.delivery)
    assert label == "C-1"
    expire(rig, "P-RETURN")
    assert await refused(rig, codes.pickup) == "code_expired"

    return_code = side.draw()
    assert await refused(rig, return_code) == "invalid_code"  # not a code until scheduled
    digest = code_digest(rig.daemon.service.ctx.code_key, return_code)
    jti = await side.succeed(
        "parcel.schedule_return", {"parcel_id": "P-RETURN", "return_digest": digest}
    )
    assert ("return", digest) in {
        (c.role, c.digest) for c in rig.ledger.codes.of_parcel("P-RETURN")
    }
    assert ("cloud:" + jti, "parcel.schedule_return") in audit_actions(rig, "P-RETURN")
    assert rig.ledger.parcels.get("P-RETURN").status is ParcelStatus.EXPIRED  # not collected yet

    pulses = rig.doors.pulses["C-1"]
    opened = await rig.daemon.service.submit_code(return_code)
    assert (opened.role, opened.locker, opened.parcel_id) == ("collector", "C-1", "P-RETURN")
    assert rig.doors.pulses["C-1"] == pulses + 1
    rig.doors.close("C-1")
    await wait_for(lambda: rig.ledger.parcels.get("P-RETURN").status is ParcelStatus.RETURNED)
    locker = rig.ledger.parcels.locker("C-1")
    assert (locker.status, locker.parcel_id) == (LockerStatus.AVAILABLE, None)
    assert rig.ledger.codes.of_parcel("P-RETURN") == []
    assert await refused(rig, return_code) == "invalid_code"  # spent

    events = await side.settle(rig)
    mine = [
        (e["type"], e["body"].get("reason"))
        for e in events
        if e["body"].get("parcel_id") == "P-RETURN" and e["type"] != "command.result"
    ]
    assert mine[-4:] == [
        ("parcel.expired", None),
        ("door.opened", "collection"),
        ("door.closed", "collection"),
        ("parcel.returned", None),
    ]
    returned = next(e for e in events if e["type"] == "parcel.returned")
    assert returned["body"] == {"parcel_id": "P-RETURN", "locker": "C-1"}


# --- technician.set_pin -------------------------------------------------------------


def ledger_files(rig: CloudRig) -> list[Path]:
    db = Path(rig.config.ledger.path)
    return sorted(db.parent.glob(db.name + "*"))  # the file, its -wal and -shm


async def test_set_pin_lets_the_technician_log_in_and_the_pin_stays_out_of_the_ledger(rig, side):
    kiosk = AsyncApiClient(rig.socket)
    await kiosk.connect(public=True)
    try:
        with pytest.raises(ApiError) as err:
            await kiosk.call("tech.login", pin=PIN)
        assert err.value.code == "invalid_code"  # no such PIN before the command

        digest = code_digest(rig.daemon.service.ctx.code_key, PIN)
        jti = await side.succeed(
            "technician.set_pin", {"technician_id": "tech-7", "pin_digest": digest}
        )
        assert rig.ledger.settings.technician_by_pin(digest) == "tech-7"
        assert ("cloud:" + jti, "technician.set_pin") in audit_actions(rig, "tech-7")

        with pytest.raises(ApiError) as err:
            await kiosk.call("parcels")
        assert err.value.code == "not_allowed"  # a public connection, no session yet
        with pytest.raises(ApiError) as err:
            await kiosk.call("tech.login", pin=PIN[:-1] + str((int(PIN[-1]) + 1) % 10))
        assert err.value.code == "invalid_code"
        login = await kiosk.call("tech.login", pin=PIN)
        assert login["technician_id"] == "tech-7" and login["session"]
        kiosk.session = login["session"]
        assert (await kiosk.call("parcels"))["parcels"] == []  # a technician's call, allowed
    finally:
        await kiosk.close()
    assert ("technician:tech-7", "technician.login") in audit_actions(rig, "tech-7")

    await side.settle(rig)
    files = {p.name: p.read_bytes() for p in ledger_files(rig)}
    assert any(digest.encode() in data for data in files.values()), list(files)  # right files
    assert [name for name, data in files.items() if PIN.encode() in data] == []


# --- the `kiosk-cloud` CLI -------------------------------------------------------------


async def kiosk_cloud(broker, *argv: str, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kiosk_cloud",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--prefix",
        PREFIX,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


def cli_keys(rig: CloudRig, cloud_key: Ed25519PrivateKey) -> list[str]:
    """--cloud-key (the private PEM, written beside the rig's state) and --code-key."""
    code_key = Path(rig.config.keys.site_code_key_file)
    pem = code_key.parent / "cloud-ed25519.key"
    pem.write_bytes(
        cloud_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ["--cloud-key", str(pem), "--code-key", str(code_key)]


async def test_cli_cancel_extend_and_schedule_return_change_the_ledger(
    rig, broker, side, cloud_key
):
    keys = cli_keys(rig, cloud_key)
    doomed = await reserve(side, rig, "K-CANCEL", "S")
    later = await reserve(side, rig, "K-EXTEND", "M")
    back = await reserve(side, rig, "K-RETURN", "L")
    await deliver(rig, "K-EXTEND", later.delivery)
    await deliver(rig, "K-RETURN", back.delivery)

    rc, out, err = await kiosk_cloud(broker, *keys, "cancel", "K-CANCEL", "--site", SITE)
    assert rc == 0, err
    assert "parcel_id: K-CANCEL" in out and "ok (" in out
    assert rig.ledger.parcels.get("K-CANCEL").status is ParcelStatus.CANCELLED
    assert await refused(rig, doomed.delivery) == "invalid_code"

    old = rig.ledger.parcels.get("K-EXTEND").expires_at
    assert old is not None
    asked = (old + timedelta(days=1, seconds=1)).replace(microsecond=0)
    text = asked.strftime("%Y-%m-%dT%H:%M:%SZ")
    rc, out, err = await kiosk_cloud(
        broker, *keys, "extend", "K-EXTEND", "--site", SITE, "--expires-at", text, "--json"
    )
    assert rc == 0, err
    printed = json.loads(out)
    assert printed["result"]["ok"] is True and printed["expires_at"] == text
    assert rig.ledger.parcels.get("K-EXTEND").expires_at == asked

    expire(rig, "K-RETURN")
    rc, out, err = await kiosk_cloud(
        broker, *keys, "schedule-return", "K-RETURN", "--site", SITE, "--json"
    )
    assert rc == 0, err
    printed = json.loads(out)
    assert printed["result"]["ok"] is True and printed["parcel_id"] == "K-RETURN"
    code = printed["return_code"]
    assert isinstance(code, str) and len(code) == 6 and code.isdigit()
    opened = await rig.daemon.service.submit_code(code)  # the printed code opens the door
    assert (opened.role, opened.locker) == ("collector", "C-1")
    rig.doors.close("C-1")
    await wait_for(lambda: rig.ledger.parcels.get("K-RETURN").status is ParcelStatus.RETURNED)
    assert rig.ledger.parcels.locker("C-1").status is LockerStatus.AVAILABLE

    events = await side.settle(rig)
    results = [e["body"] for e in events if e["type"] == "command.result"]
    assert [(b["cmd"], b["ok"]) for b in results[-3:]] == [
        ("reservation.cancel", True),
        ("parcel.extend", True),
        ("parcel.schedule_return", True),
    ]
    assert "parcel.returned" in [e["type"] for e in events]


async def test_cli_codes_follow_a_sites_longer_code_length(tmp_path, broker, cloud_key):
    """A site with policy.code_length = 8: `reserve` and `schedule-return` draw 8 digits
    when told, and those codes open the doors (a 6-digit return code could never be typed)."""
    rig = CloudRig(tmp_path / "kiosk8", mqtt_config(broker), cloud_key, policy={"code_length": 8})
    async with rig:
        await wait_for(rig.listening)
        keys = cli_keys(rig, cloud_key)
        rc, out, err = await kiosk_cloud(
            broker,
            *keys,
            "reserve",
            "--site",
            SITE,
            "--size",
            "L",
            "--parcel-id",
            "K-8",
            "--code-length",
            "8",
            "--json",
        )
        assert rc == 0, err
        reserved = json.loads(out)
        assert len(reserved["delivery_code"]) == 8
        await wait_for(lambda: rig.ledger.parcels.get("K-8") is not None)
        await deliver(rig, "K-8", reserved["delivery_code"])
        expire(rig, "K-8")
        rc, out, err = await kiosk_cloud(
            broker,
            *keys,
            "schedule-return",
            "K-8",
            "--site",
            SITE,
            "--code-length",
            "8",
            "--json",
        )
        assert rc == 0, err
        code = json.loads(out)["return_code"]
        assert len(code) == 8 and code.isdigit()
        opened = await rig.daemon.service.submit_code(code)
        assert opened.role == "collector"
        rig.doors.close(opened.locker)
        await wait_for(lambda: rig.ledger.parcels.get("K-8").status is ParcelStatus.RETURNED)
