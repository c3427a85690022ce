"""No code the bank was told or typed at it is ever in the ledger's bytes: digests only."""

import re
from pathlib import Path

import pytest

from kiosk.domain.codes import code_digest
from kiosk.domain.errors import InvalidCode, LockedOut, NotYetDelivered
from kiosk.domain.sizes import Size

TYPED_WRONG = ["583920", "619384", "704215", "12-34-57", "99887"]
CLOUD_CODES = ("314159", "271828")
#: Random product text a 6-digit run can hide in by chance: uuid4 event ids, timestamps,
#: and the audit chain's sha256 hex digests (~26 000 hex digits with the WAL's page copies:
#: a 4 % chance per run that they hold one of the codes' digit runs by chance).
BENIGN = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
    rb"|(?<![0-9a-f])(?:[0-9a-f]{64})+(?![0-9a-f])"  # prev_hash, hash side by side
)


def ledger_bytes(path: str) -> bytes:
    files = [Path(path), Path(f"{path}-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def leaks(data: bytes, codes: set[str]) -> dict[str, int]:
    """Where each code's ASCII digits occur outside text that is random by construction."""
    benign = [m.span() for m in BENIGN.finditer(data)]
    found = {}
    for code in codes:
        for hit in re.finditer(re.escape(code.encode("ascii")), data):
            if not any(a <= hit.start() and hit.end() <= b for a, b in benign):
                found[code] = hit.start()
    return found


async def test_no_code_ever_reaches_the_ledger_file(bank):
    svc, clock = bank.service, bank.clock
    announced = [svc.announce(size) for size in (Size.S, Size.M, Size.L)]
    svc.create_reservation("P-CLOUD", Size.S, *(code_digest(bank.key, c) for c in CLOUD_CODES))
    codes = {c for a in announced for c in (a.delivery_code, a.pickup_code)}
    codes |= set(CLOUD_CODES) | {c.replace("-", "") for c in TYPED_WRONG}

    for ann in announced[:2]:  # delivered and picked up
        res = await svc.submit_code(ann.delivery_code, source="keypad")
        bank.doors.close(res.locker)
        await svc.poll_doors()
        res = await svc.submit_code(f" {ann.pickup_code[:3]} {ann.pickup_code[3:]} ", "cli")
        bank.doors.close(res.locker)
        await svc.poll_doors()
    res = await svc.submit_code(announced[2].delivery_code)  # delivered, waiting for pickup
    bank.doors.close(res.locker)
    await svc.poll_doors()
    with pytest.raises(NotYetDelivered):
        await svc.submit_code(CLOUD_CODES[1])
    for typed in TYPED_WRONG:
        with pytest.raises((InvalidCode, LockedOut)):
            await svc.submit_code(typed)
    clock.advance(minutes=5)
    svc.cancel_reservation("P-CLOUD")

    data = ledger_bytes(bank.path)
    assert Path(f"{bank.path}-wal").stat().st_size > 0  # the WAL was scanned with rows in it
    assert announced[0].parcel_id.encode() in data  # the scan sees plain ledger text...
    assert code_digest(bank.key, announced[2].pickup_code).encode() in data  # ...and digests
    assert leaks(data, codes) == {}

    bank.ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = ledger_bytes(bank.path)
    assert announced[0].parcel_id.encode() in Path(bank.path).read_bytes()
    assert leaks(data, codes) == {}

    bank.ledger.close()  # the last connection folds the WAL away
    assert leaks(ledger_bytes(bank.path), codes) == {}


def test_the_scan_would_see_a_stored_code():
    planted = b"\x00\x17" + b"583920" + b"\x01"
    assert leaks(planted, {"583920"}) == {"583920": 2}
    in_uuid = b"9f1c2a3b-4d5e-4f60-8a7b-583920aabbcc"
    assert leaks(in_uuid, {"583920"}) == {}
    in_hash = b'"' + b"583920" + b"a0" * 29 + b'"'
    assert leaks(in_hash, {"583920"}) == {}
    assert leaks(b'"' + b"583920" + b"a0" * 28 + b'"', {"583920"}) == {"583920": 1}
