"""Fuzzing the local API over its real socket: nothing crashes it, nothing changes state.

An in-process daemon (DaemonRig) gets lines of random bytes, random JSON
values, and requests naming real and made-up calls with arguments of the
wrong types, huge strings, deep nesting, NaN, lone surrogates and lines
over the length limit. They come on a *public* connection (`hello` with
role=public), as the keypad screen's would, so every technician call must
be refused and no valid state-changing call can be generated.

After every example: each reply was one strict-JSON object with `ok` true or
false (never an `internal` error: that is an unhandled exception), the
connection still answers, and the ledger holds exactly what it held before.
Wrong codes and PINs may leave what a wrong code leaves (the attempts
table, the two limiters and the audit rows of kiosk/service/attempts.py), and the
limiters are reset before each example so lockouts do not hide the paths
behind them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.daemon_proc import short_dir
from support.daemon_rig import DaemonRig

from kiosk.api.protocol import MAX_LINE
from kiosk.domain.sizes import Size
from kiosk.service.attempts import ACTIONS

#: Every call the API knows (checked against the daemon below) and the event stream's.
CALLS = [
    "hello",
    "status",
    "help",
    "layout",
    "doors",
    "code.submit",
    "courier.doesnt_fit",
    "courier.cancel",
    "courier.done",
    "door.reopen",
    "door.report",
    "tech.login",
    "tech.logout",
    "parcels",
    "parcels.announce",
    "door.open",
    "locker.service",
    "locker.check",
    "audit.tail",
    "audit.verify",
    "selftest",
    "presence.check",
    "backup",
    "lockout.reset",
    "health",
    "tech.set_pin",
    "tech.list",
    "tech.remove",
    "hardware.scan",
    "hardware.map_open",
    "hardware.map_entries",
    "subscribe",
]
ARG_NAMES = [
    "code",
    "locker",
    "reason",
    "size",
    "parcel_id",
    "in_service",
    "parcel_inside",
    "n",
    "dest",
    "technician_id",
    "pin",
    "visit",
    "why",
    "role",
    "bus",
    "unit",
    "channel",
    "lockers",
]
LABELS = ["A-1", "A-2", "B-1", "C-1", "Z-9"]

#: Compared before and after each example (with `meta` and `audit`, see snapshot()).
#: Left out: attempts, limiter and pin_limiter, which a wrong code or PIN may change.
SNAPSHOT_TABLES = [
    "lockers",
    "parcels",
    "codes",
    "door_ops",
    "outbox",
    "inbox",
    "technicians",
]
#: What a wrong code or PIN (and a lockout it causes) writes to the audit log.
ATTEMPT_AUDIT_ACTIONS = tuple(action for actions in ACTIONS.values() for action in actions)

# --- strategies -------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=10,
)
digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
huge_text = st.integers(min_value=300, max_value=20_000).map(lambda n: "7" * n)
lone_surrogates = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3)
arg_values = (
    json_values
    | digits
    | st.sampled_from(LABELS)
    | huge_text
    | st.text(max_size=40)
    | lone_surrogates
)
args = st.dictionaries(st.sampled_from(ARG_NAMES) | st.text(max_size=8), arg_values, max_size=4)
ids = scalars | json_values | lone_surrogates
requests = st.fixed_dictionaries(
    {"call": st.sampled_from(CALLS) | st.text(max_size=12) | lone_surrogates},
    optional={
        "id": ids,
        "args": args | json_values,
        "session": st.text(max_size=40) | json_values | lone_surrogates,
    },
)
#: A real call with every argument name present, each of any type: type confusion.
every_arg_requests = st.fixed_dictionaries(
    {
        "id": ids,
        "call": st.sampled_from(CALLS),
        "args": st.fixed_dictionaries({name: arg_values for name in ARG_NAMES}),
    }
)


def _dump(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


request_lines = st.builds(_dump, requests | every_arg_requests, st.booleans())
raw_lines = st.binary(max_size=300)
json_lines = st.builds(_dump, json_values, st.just(True))
deep_lines = st.integers(min_value=50, max_value=20_000).map(
    lambda d: b'{"id": 1, "call": "status", "args": {"x": ' + b"[" * d + b"]" * d + b"}}"
)
odd_number_lines = st.sampled_from(
    [
        b'{"id": NaN, "call": "hello"}',
        b'{"id": 1e999, "call": "status"}',
        b'{"id": -Infinity, "call": "doors"}',
        b'{"id": 1, "call": "code.submit", "args": {"code": NaN}}',
        b'{"id": ' + b"9" * 5000 + b', "call": "hello"}',
        b'{"id": 1, "call": "hello"',
        b'{"id": 1, "call": "hello"}{"id": 2}',
        b"\xef\xbb\xbf{}",
    ]
)
too_long_lines = st.integers(min_value=MAX_LINE - 100, max_value=MAX_LINE + 5000).map(
    lambda n: b'{"id": 1, "call": "code.submit", "args": {"code": "' + b"1" * n + b'"}}'
)
lines = st.lists(
    request_lines
    | raw_lines
    | json_lines
    | deep_lines
    | odd_number_lines
    | too_long_lines
    | st.builds(lambda call: _dump({"id": 5, "call": call}, True), st.sampled_from(CALLS)),
    min_size=1,
    max_size=5,
)


# --- the daemon, its state, and one connection ------------------------------------


@pytest.fixture
async def rig(tmp_path):
    """A bank with something in it: a delivered parcel, an expected one, a PIN."""
    policy = {"daily_failure_budget": 10_000}  # one example's wrong codes never lock the site
    async with DaemonRig(short_dir(tmp_path), policy=policy) as rig:
        service = rig.daemon.service
        assert service is not None
        delivered = service.announce(Size.M)
        service.announce(Size.S)
        opened = await service.submit_code(delivered.delivery_code)
        rig.doors.close(opened.locker)
        for _ in range(500):  # supervision records the closing
            if service.ctx.ledger.parcels.get(delivered.parcel_id).status.value == "DELIVERED":
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the set-up delivery was never recorded")
        service.set_pin("t1", pin="8675309142", actor="test")
        yield rig


def snapshot(rig: DaemonRig) -> dict[str, str]:
    """A digest of every row that fuzzing must leave alone."""
    conn = rig.daemon.service.ctx.ledger.conn  # type: ignore[union-attr]
    out = {}
    for table in SNAPSHOT_TABLES:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    # The audit chain's head moves with every audit row, a wrong PIN's included.
    meta = conn.execute("SELECT * FROM meta WHERE key != 'audit_head' ORDER BY 1").fetchall()
    out["meta"] = hashlib.sha256(repr(meta).encode()).hexdigest()
    placeholders = ",".join("?" * len(ATTEMPT_AUDIT_ACTIONS))
    audit = conn.execute(
        f"SELECT * FROM audit WHERE action NOT IN ({placeholders}) ORDER BY id",
        ATTEMPT_AUDIT_ACTIONS,
    ).fetchall()
    out["audit"] = hashlib.sha256(repr(audit).encode()).hexdigest()
    return out


def strict_json(line: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"reply holds {name}, which is not JSON: {line[:200]!r}")

    return json.loads(line.decode("utf-8"), parse_constant=refuse)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def public(cls, path: str) -> Conn:
        reader, writer = await asyncio.open_unix_connection(path, limit=4 * MAX_LINE)
        conn = cls(reader, writer)
        await conn.send(b'{"id": "hello", "call": "hello", "args": {"role": "public"}}')
        replies = await conn.until("hello")
        assert replies[-1]["result"]["admin"] is False
        return conn

    async def send(self, line: bytes) -> None:
        self.writer.write(line + b"\n")
        await self.writer.drain()

    async def until(self, sentinel: str) -> list[dict[str, Any]]:
        """Every reply up to and including the one with id `sentinel` (events skipped)."""
        replies = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 30)
            assert line, f"the daemon closed the connection; replies so far: {replies}"
            message = strict_json(line)
            assert isinstance(message, dict), message
            if "event" in message:
                continue
            replies.append(message)
            if message.get("id") == sentinel:
                return replies

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def check_reply(reply: dict[str, Any]) -> None:
    assert set(reply) >= {"id", "ok"} and reply["ok"] in (True, False), reply
    if reply["ok"]:
        result = reply["result"]
        assert isinstance(result, dict), reply
        # Nothing a technician call returns ever reaches the public connection ...
        assert not {
            "parcels",
            "rows",
            "boards",
            "dest",
            "reset",
            "technician_id",
            "technicians",
        } & set(result)
        # ... nor which parcel a locker holds.
        assert all(lk["parcel_id"] is None for lk in result.get("lockers", [])), result
        return
    error = reply["error"]
    assert isinstance(error, dict) and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["code"], str) and error["code"] != "internal", reply


# --- the tests --------------------------------------------------------------------

_sentinels = itertools.count()


async def test_the_fuzzed_calls_are_the_daemons_calls(rig):
    assert set(CALLS) == {*rig.daemon.server.api.calls, "subscribe"}  # type: ignore[union-attr]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fuzz=lines)
async def test_random_requests_never_crash_the_daemon_or_change_state(rig, fuzz):
    service = rig.daemon.service
    service.reset_lockout("test")  # earlier examples' wrong codes must not hide any path
    before = snapshot(rig)
    conn = await Conn.public(rig.socket)
    try:
        for line in fuzz:
            await conn.send(line.replace(b"\n", b" "))
        sentinel = f"sentinel-{next(_sentinels)}"
        await conn.send(json.dumps({"id": sentinel, "call": "hello"}).encode())
        replies = await conn.until(sentinel)
    finally:
        await conn.close()
    for reply in replies:
        check_reply(reply)
    assert replies[-1]["ok"] is True and replies[-1]["result"]["api"] == 1
    assert len(replies) - 1 >= sum(1 for line in fuzz if line.replace(b"\n", b" ").strip())
    assert snapshot(rig) == before


async def test_known_bad_lines_get_bad_request_and_the_connection_lives(rig):
    """NaN, a lone surrogate, bytes that are not UTF-8: refused, one reply each."""
    conn = await Conn.public(rig.socket)
    try:
        for line in [b"\xff" * 10, b'{"id": NaN, "call": "hello"}', b'{"call": "\\ud800"}']:
            await conn.send(line)
        await conn.send(b'{"id": "s", "call": "status"}')
        replies = await conn.until("s")
    finally:
        await conn.close()
    assert [r["ok"] for r in replies] == [False, False, False, True]
    assert all(r["error"]["code"] == "bad_request" for r in replies[:3])
    assert all(lk["parcel_id"] is None for lk in replies[-1]["result"]["lockers"])
