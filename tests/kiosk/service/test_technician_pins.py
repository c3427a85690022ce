"""Technician PINs: 6 digits at least on every way one is set; wrong entries and lockouts audited.

The audit rows name what happened (a wrong code, a wrong PIN, a back-off, the
day's budget spent), with counts, but never the digits that were typed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.domain.codes import code_digest
from kiosk.domain.errors import BadRequest, InvalidCode, LockedOut, SiteLocked
from kiosk.domain.sizes import Size

GOOD_PIN = "8406139275"
SHORT_PINS = ["4711", "90210", "0042", "7"]
#: Wrong PINs of 10 digits: no timestamp, uuid or hash in the ledger spells one by chance.
WRONG_PINS = [f"93{n:08d}" for n in range(20, 40)]
WRONG_CODES = [f"7{n:05d}" for n in range(20)]


def technicians(bank) -> list[tuple]:
    return bank.ledger.conn.execute("SELECT * FROM technicians ORDER BY 1").fetchall()


def audit_rows(bank, *actions: str) -> list[tuple[str, str, str, dict]]:
    marks = ", ".join("?" for _ in actions)
    rows = bank.ledger.conn.execute(
        f"SELECT actor, action, subject, detail FROM audit WHERE action IN ({marks}) ORDER BY id",
        actions,
    )
    return [(actor, action, subject, json.loads(detail)) for actor, action, subject, detail in rows]


def audit_text(bank) -> str:
    rows = bank.ledger.conn.execute("SELECT actor, action, subject, detail FROM audit")
    return "\n".join(" ".join(row) for row in rows)


@pytest.mark.parametrize("pin", SHORT_PINS)
async def test_a_short_typed_pin_is_refused_and_changes_nothing(bank, pin):
    bank.service.set_pin("alice", pin=GOOD_PIN)
    before, chain = technicians(bank), bank.ledger.audit.verify()
    with pytest.raises(BadRequest, match="6 to 10 digits") as info:
        bank.service.set_pin("alice", pin=pin)
    assert pin not in info.value.message
    assert technicians(bank) == before and bank.ledger.audit.verify() == chain
    assert bank.service.verify_pin(GOOD_PIN) == "alice"  # the old PIN still works


@pytest.mark.parametrize("pin", SHORT_PINS)
async def test_the_digest_of_a_short_pin_is_refused_and_changes_nothing(bank, pin):
    """technician.set_pin sends only a digest: the bank still tells a short PIN by its key."""
    digest = code_digest(bank.key, pin)
    with pytest.raises(BadRequest, match="too short PIN") as info:
        bank.service.set_pin("bob", pin_digest=digest, actor="cloud:j-1")
    assert "6 to 10 digits" in info.value.message
    assert technicians(bank) == []
    assert audit_rows(bank, "technician.set_pin") == []


@pytest.mark.parametrize("pin", ["000042", "123456", GOOD_PIN])
async def test_the_digest_of_a_pin_of_six_digits_or_more_is_taken(bank, pin):
    bank.service.set_pin("bob", pin_digest=code_digest(bank.key, pin), actor="cloud:j-2")
    assert bank.service.verify_pin(pin) == "bob"


def test_only_short_pins_digests_are_short():
    from kiosk.domain.pins import is_short_pin_digest

    key = bytes(range(32))
    assert all(is_short_pin_digest(key, code_digest(key, p)) for p in ("0", "99999", "00000"))
    assert not any(is_short_pin_digest(key, code_digest(key, p)) for p in ("000000", "12345678"))
    assert not is_short_pin_digest(bytes(32), code_digest(key, "4711"))  # another site's key


async def test_a_short_pin_stored_by_an_older_bank_no_longer_opens(bank):
    """Digests are all the ledger has, so an old 4-digit PIN stays stored but cannot log in."""
    with bank.ledger.tx():
        bank.ledger.settings.set_technician_pin(
            "old", code_digest(bank.key, "4711"), bank.clock.now()
        )
    with pytest.raises(InvalidCode):
        bank.service.verify_pin("4711")
    assert [r[1] for r in audit_rows(bank, "technician.login_failed")] == [
        "technician.login_failed"
    ]


async def test_every_wrong_pin_back_off_and_lockout_is_an_audit_row_without_digits(bank):
    bank.service.set_pin("alice", pin=GOOD_PIN)
    seen = []
    for pin in WRONG_PINS:
        with pytest.raises((InvalidCode, LockedOut, SiteLocked)) as info:
            bank.service.verify_pin(pin)
        seen.append(info.value.code)
        if isinstance(info.value, LockedOut):
            bank.clock.advance(seconds=info.value.details["retry_after"])
    assert seen[-1] == "site_locked"
    rows = audit_rows(bank, "technician.login_failed", "pin.backoff", "pin.lockout")
    actions = [action for _, action, _, _ in rows]
    assert actions.count("technician.login_failed") == len(WRONG_PINS)
    # Every wrong entry from the max_failures-th in a row on starts (or doubles) a back-off,
    # the last one too, although its answer is the site lock.
    limit = bank.service.ctx.limiter.max_failures
    in_a_row = [d["in_a_row"] for _, a, _, d in rows if a == "technician.login_failed"]
    assert actions.count("pin.backoff") == sum(n >= limit for n in in_a_row) >= 1
    assert actions.count("pin.lockout") == 1
    failed = [d for _, a, _, d in rows if a == "technician.login_failed"]
    assert [d["in_a_row"] for d in failed[:5]] == [1, 2, 3, 4, 5]
    assert [d["today"] for d in failed] == list(range(1, len(WRONG_PINS) + 1))
    first_backoff = next(d for _, a, _, d in rows if a == "pin.backoff")
    assert first_backoff["seconds"] == 30
    lockout = next(d for _, a, _, d in rows if a == "pin.lockout")
    assert lockout["failures"] == len(WRONG_PINS)
    # A PIN typed during a back-off or the site lock is refused unread: no row, no count.
    with pytest.raises(SiteLocked):
        bank.service.verify_pin(GOOD_PIN)
    assert len(audit_rows(bank, "technician.login_failed")) == len(WRONG_PINS)
    text = audit_text(bank)
    data = b"".join(p.read_bytes() for p in Path(bank.path).parent.glob("*.db*"))
    for pin in [*WRONG_PINS, GOOD_PIN]:
        assert pin not in text
        assert pin.encode() not in data, f"{pin} is in the ledger's bytes"


async def test_every_wrong_code_back_off_and_lockout_is_an_audit_row_without_digits(bank):
    announced = bank.service.announce(Size.S)
    seen = []
    for code in WRONG_CODES:
        with pytest.raises((InvalidCode, LockedOut, SiteLocked)) as info:
            await bank.service.submit_code(code, source="keypad")
        seen.append(info.value.code)
        if isinstance(info.value, LockedOut):
            bank.clock.advance(seconds=info.value.details["retry_after"])
    assert seen[-1] == "site_locked"
    rows = audit_rows(bank, "code.failed", "code.backoff", "code.lockout")
    actions = [action for _, action, _, _ in rows]
    assert actions.count("code.failed") == len(WRONG_CODES)
    # Every wrong entry from the max_failures-th in a row on starts (or doubles) a back-off,
    # the last one too, although its answer is the site lock.
    limit = bank.service.ctx.limiter.max_failures
    in_a_row = [d["in_a_row"] for _, a, _, d in rows if a == "code.failed"]
    assert actions.count("code.backoff") == sum(n >= limit for n in in_a_row) >= 1
    assert actions.count("code.lockout") == 1
    failed = [d for _, a, _, d in rows if a == "code.failed"]
    assert {d["source"] for d in failed} == {"keypad"}
    assert [d["today"] for d in failed] == list(range(1, len(WRONG_CODES) + 1))
    assert all(actor == "kiosk" for actor, _, _, _ in rows)
    text = audit_text(bank)
    for code in [*WRONG_CODES, announced.delivery_code, announced.pickup_code]:
        assert code not in text
    assert bank.ledger.audit.verify().ok
