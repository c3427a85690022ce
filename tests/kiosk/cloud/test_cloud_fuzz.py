"""Hypothesis throws payloads at the command handler: it never raises; garbage changes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from datetime import timedelta

import pytest
from cloudrig import SITE, snapshot, wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.clock import FakeClock
from support.rig import build_bank

from kiosk.cloud.commands import CommandHandler
from kiosk.cloud.tokens import Verifier
from kiosk_cloud.signing import sign

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
CMDS = [
    "reservation.create",
    "reservation.cancel",
    "parcel.extend",
    "parcel.schedule_return",
    "door.open",
    "locker.set_service",
    "technician.set_pin",
    "code.reset_lockout",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _seg(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jws_like(draw) -> bytes:
    """Three dotted segments: JSON-ish headers and claims, any alg, random or no signature."""
    algs = st.sampled_from(["none", "EdDSA", "HS256", "RS256", "", "eddsa"])
    header = draw(
        st.dictionaries(st.sampled_from(["alg", "typ", "kid", "crit"]), json_values)
        | st.fixed_dictionaries({"alg": algs})
    )
    claims = draw(
        st.dictionaries(
            st.sampled_from(["jti", "sub", "iat", "exp", "nbf", "cmd", "args"]), json_values
        )
    )
    sig = draw(st.binary(max_size=70))
    parts = [_seg(json.dumps(header).encode()), _seg(json.dumps(claims).encode()), _seg(sig)]
    if draw(st.booleans()):
        parts[draw(st.integers(0, 2))] = draw(st.text(max_size=30))
    return ".".join(parts).encode("utf-8", "surrogatepass")


@st.composite
def wrong_key_tokens(draw) -> bytes:
    now = FakeClock().now()
    _, token = sign(OTHER, SITE, draw(st.sampled_from(CMDS)), {"label": "A-1", "reason": "x"}, now)
    return token.encode()


garbage = (
    st.binary(max_size=300)
    | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | jws_like()
    | wrong_key_tokens()
)


@st.composite
def signed_nonsense(draw) -> bytes:
    """Properly signed, for this site, in time: any cmd, any args."""
    now = FakeClock().now()
    cmd = draw(st.sampled_from(CMDS) | st.text(max_size=20) | st.just(None))
    args = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "parcel_id",
                    "label",
                    "size",
                    "reason",
                    "in_service",
                    "expires_at",
                    "return_digest",
                    "pin_digest",
                    "technician_id",
                    "delivery_digest",
                    "pickup_digest",
                    "deliver_by",
                    "order_id",
                ]
            ),
            json_values,
        )
        | json_values
    )
    extra = {}
    if draw(st.booleans()):
        extra["nbf"] = draw(
            st.integers(0, 2**40) | st.floats(allow_nan=False) | st.text(max_size=3)
        )
    _, token = sign(KEY, SITE, cmd, args, now, **extra)  # type: ignore[arg-type]
    return token.encode()


@pytest.fixture
def handler(tmp_path):
    clock = FakeClock()
    factory = MockFactory()
    bank = build_bank(str(tmp_path / "ledger.db"), factory, bytes(32), clock)
    verifier = Verifier(KEY.public_key(), SITE)
    handler = CommandHandler(
        bank.service, bank.ledger, verifier, clock, reject_answers_per_min=10**6
    )
    # Hypothesis shares this fixture between examples, so the outbox fills up: start
    # every test with more answers in it than one outbox() page, as a long run would.
    for _ in range(12):
        _, token = sign(OTHER, SITE, "door.open", {"label": "A-1", "reason": "x"}, clock.now())
        asyncio.run(handler.handle(token.encode()))
    assert bank.ledger.outbox.depth() >= 12
    yield handler, bank
    bank.ledger.close()
    factory.reset()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=garbage)
def test_garbage_changes_nothing(handler, payload):
    h, bank = handler
    before = snapshot(bank.path)
    last = bank.ledger.outbox.last_seq()
    outcome = asyncio.run(h.handle(payload))
    assert snapshot(bank.path) == before
    # Rows this payload added, however many earlier examples left in the shared fixture.
    answers = bank.ledger.outbox.pending(limit=10, after_seq=last)
    assert [e.type for e in answers] == (["command.result"] if outcome.body else [])
    if outcome.body is not None:
        assert outcome.body["ok"] is False
        assert outcome.body["error"]["code"] in {
            "bad_signature",
            "wrong_site",
            "expired",
            "malformed",
        }


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=signed_nonsense())
def test_signed_nonsense_is_answered_never_raises(handler, payload):
    h, bank = handler
    outcome = asyncio.run(h.handle(payload))
    assert outcome.body is not None and isinstance(outcome.body["ok"], bool)
    if not outcome.body["ok"]:
        assert outcome.body["error"]["code"] != "internal_error", outcome.body
    for locker in bank.ledger.parcels.lockers():
        assert locker.status.value in {"AVAILABLE", "OUT_OF_SERVICE"}


async def test_junk_through_the_broker_never_stops_the_link(rig, cloud, cloud_key):
    rng = random.Random(7)
    topic = cloud.topics(SITE).commands
    before = snapshot(rig.config.ledger.path)
    for _ in range(60):
        kind = rng.randrange(3)
        if kind == 0:
            payload = rng.randbytes(rng.randrange(200))
        elif kind == 1:
            payload = ".".join(_seg(rng.randbytes(rng.randrange(40))) for _ in range(3)).encode()
        else:
            when = FakeClock().now() + timedelta(days=rng.randrange(-400, 400))
            _, token = sign(OTHER, SITE, "door.open", {"label": "A-1", "reason": "x"}, when)
            payload = token.encode()
        await asyncio.to_thread(cloud.publish, topic, payload)
    jti = await asyncio.to_thread(cloud.send, SITE, "code.reset_lockout", {})
    body = await asyncio.to_thread(cloud.wait_result, jti, 10)
    assert body is not None and body["ok"] is True
    after = snapshot(rig.config.ledger.path)
    assert {
        k: v for k, v in after.items() if k not in ("audit", "inbox", "limiter", "pin_limiter")
    } == {k: v for k, v in before.items() if k not in ("audit", "inbox", "limiter", "pin_limiter")}
    assert rig.doors.pulses["A-1"] == 0
    await wait_for(rig.listening)
