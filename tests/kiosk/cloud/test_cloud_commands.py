"""Commands over a real broker: refused ones open and change nothing; door.open is rationed."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
from cloudrig import SITE, CloudRig, mqtt_config, result_of, snapshot, wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk_cloud.signing import sign


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(jti: str, site: str = SITE, **over) -> dict:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "jti": jti,
        "sub": site,
        "iat": now,
        "exp": now + 300,
        "cmd": "door.open",
        "args": {"label": "A-1", "reason": "test"},
    }
    claims.update(over)
    return claims


def forged_tokens(cloud_key: Ed25519PrivateKey) -> list[tuple[str, bytes, str]]:
    """(jti, payload, expected error code): each would open A-1 if it were believed."""
    now = datetime.now(UTC)
    other = Ed25519PrivateKey.generate()
    open_a1 = {"label": "A-1", "reason": "test"}
    _, wrong_key = sign(other, SITE, "door.open", open_a1, now, jti="forged")
    _, expired = sign(
        cloud_key,
        SITE,
        "door.open",
        open_a1,
        now - timedelta(seconds=400),
        ttl_s=300,
        jti="expired",
    )
    _, wrong_site = sign(cloud_key, "other-site", "door.open", open_a1, now, jti="wrong-site")
    _, future = sign(
        cloud_key, SITE, "door.open", open_a1, now + timedelta(seconds=600), jti="future"
    )
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims('alg-none'))}."
    hs256 = jwt.encode(_claims("hs256"), "a shared secret that is long enough!", algorithm="HS256")
    _, no_exp = sign(cloud_key, SITE, "door.open", open_a1, now, jti="no-exp")
    no_exp_token = jwt.encode(
        {
            k: v
            for k, v in jwt.decode(no_exp, options={"verify_signature": False}).items()
            if k != "exp"
        },
        cloud_key,
        algorithm="EdDSA",
    )
    _, bad_cmd = sign(cloud_key, SITE, "door.open_all", {}, now, jti="bad-cmd")
    _, bad_args = sign(cloud_key, SITE, "door.open", {"label": 7}, now, jti="bad-args")
    _, unknown_label = sign(
        cloud_key, SITE, "door.open", {"label": "*", "reason": "all"}, now, jti="no-such-label"
    )
    return [
        ("forged", wrong_key.encode(), "bad_signature"),
        ("expired", expired.encode(), "expired"),
        ("wrong-site", wrong_site.encode(), "wrong_site"),
        ("future", future.encode(), "expired"),
        ("alg-none", alg_none.encode(), "bad_signature"),
        ("hs256", hs256.encode(), "bad_signature"),
        ("no-exp", no_exp_token.encode(), "malformed"),
        ("bad-cmd", bad_cmd.encode(), "malformed"),
        ("bad-args", bad_args.encode(), "malformed"),
        ("no-such-label", unknown_label.encode(), "not_found"),
    ]


async def test_refused_commands_open_nothing_and_change_nothing(rig, cloud, cloud_key):
    db = rig.config.ledger.path
    await wait_for(lambda: rig.ledger.outbox.depth() == 0)
    before = snapshot(db)
    pulses = dict(rig.doors.pulses)
    topic = cloud.topics(SITE).commands
    for jti, payload, code in forged_tokens(cloud_key):
        await asyncio.to_thread(cloud.publish, topic, payload)
        body = await result_of(cloud, jti)
        assert body["ok"] is False and body["error"]["code"] == code, (jti, body)
    # no readable jti: logged and dropped, no answer; the link goes on
    for junk in (b"", b"\xff\xfe", b"not a token", b"a.b.c", b"x" * 20000):
        await asyncio.to_thread(cloud.publish, topic, junk)
    after = snapshot(db)
    # the one verified command (no such locker) is recorded so a repeat gets the same answer
    assert [row[0] for row in after.pop("inbox")] == ["no-such-label"]
    before.pop("inbox")
    assert after == before
    assert rig.doors.pulses == pulses
    await wait_for(lambda: rig.ledger.outbox.depth() == 0)
    # still answering: a good command goes through
    jti = await asyncio.to_thread(
        cloud.send,
        SITE,
        "locker.set_service",
        {"label": "C-1", "in_service": False, "reason": "glass broken"},
    )
    assert (await result_of(cloud, jti))["ok"] is True
    assert rig.ledger.parcels.locker("C-1").status.value == "OUT_OF_SERVICE"


async def test_a_repeated_jti_changes_nothing_and_gets_the_original_answer(rig, cloud):
    args = {"label": "C-1", "in_service": False, "reason": "inspection"}
    jti = await asyncio.to_thread(cloud.send, SITE, "locker.set_service", args)
    first = await result_of(cloud, jti)
    assert first["ok"] is True
    await asyncio.to_thread(
        cloud.send,
        SITE,
        "locker.set_service",
        {"label": "C-1", "in_service": True, "reason": "done"},
        jti="other",
    )
    await result_of(cloud, "other")
    assert rig.ledger.parcels.locker("C-1").status.value == "AVAILABLE"
    before = snapshot(rig.config.ledger.path)
    # the same jti again (a token re-sent as is, and one re-signed): nothing moves
    await asyncio.to_thread(cloud.send, SITE, "locker.set_service", args, jti=jti)
    assert await result_of(cloud, jti) == first
    assert rig.ledger.parcels.locker("C-1").status.value == "AVAILABLE"
    assert snapshot(rig.config.ledger.path) == before


async def test_service_refusal_is_answered_and_recorded(rig, cloud):
    jti = await asyncio.to_thread(cloud.send, SITE, "reservation.cancel", {"parcel_id": "nope"})
    body = await result_of(cloud, jti)
    assert body["ok"] is False and body["error"]["code"] == "not_found"
    assert rig.ledger.outbox.inbox_result(jti) == body


async def test_remote_door_open_is_rate_limited_per_label_and_site(
    tmp_path, broker, cloud_key, cloud
):
    rig = CloudRig(
        tmp_path / "kiosk", mqtt_config(broker), cloud_key, policy={"remote_opens_per_hour": 3}
    )
    async with rig:
        await wait_for(rig.listening)
        await _open_five(rig, cloud)


async def _open_five(rig, cloud):
    jtis = []
    for label in ("A-1", "A-1", "A-2", "B-1", "C-1"):
        jti = await asyncio.to_thread(
            cloud.send, SITE, "door.open", {"label": label, "reason": "support call"}
        )
        jtis.append(jti)
        body = await result_of(cloud, jti)
        jtis[-1] = (label, body["ok"], (body["error"] or {}).get("code"))
        rig.doors.close(label)
    assert jtis == [
        ("A-1", True, None),
        ("A-1", False, "rate_limited"),  # one per label per 30 s
        ("A-2", True, None),
        ("B-1", True, None),
        ("C-1", False, "rate_limited"),  # policy.remote_opens_per_hour
    ]
    assert rig.doors.pulses["C-1"] == 0 and rig.doors.pulses["A-1"] == 1
    audit = [r for r in rig.ledger.db.query("SELECT actor, action FROM audit")]
    assert sum(1 for r in audit if r["action"] == "technician.open") == 3
    assert all(r["actor"].startswith("cloud:") for r in audit if r["action"] == "technician.open")


async def test_door_open_cut_short_by_a_crash_is_not_run_again(rig, cloud):
    """The marker row written before the pulse: a redelivered door.open answers `interrupted`."""
    jti = "crashed-open"
    marker = {"command_id": jti, "ok": False, "pending": True}
    with rig.ledger.tx():
        rig.ledger.outbox.inbox_put(jti + "#pending", "door.open", False, marker, datetime.now(UTC))
    await asyncio.to_thread(
        cloud.send, SITE, "door.open", {"label": "A-1", "reason": "again"}, jti=jti
    )
    body = await result_of(cloud, jti)
    assert body["error"]["code"] == "interrupted"
    assert rig.doors.pulses["A-1"] == 0
