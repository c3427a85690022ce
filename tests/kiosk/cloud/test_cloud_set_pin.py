"""technician.set_pin over a real broker: the digest of a PIN under 6 digits is refused.

The command carries only the PIN's digest; the bank holds the site key, so
it can tell a short PIN from the digest alone (kiosk/domain/pins.py).
"""

from __future__ import annotations

import asyncio

import pytest
from cloudrig import SITE, result_of, snapshot, wait_for

from kiosk.domain.codes import code_digest


@pytest.mark.parametrize("short", ["4711", "09876"])
async def test_the_digest_of_a_short_pin_is_refused_and_changes_nothing(rig, cloud, short):
    key = rig.daemon.service.ctx.code_key
    await wait_for(lambda: rig.ledger.outbox.depth() == 0)
    before = snapshot(rig.config.ledger.path)
    args = {"technician_id": "tech-7", "pin_digest": code_digest(key, short)}
    jti = await asyncio.to_thread(cloud.send, SITE, "technician.set_pin", args)
    body = await result_of(cloud, jti)
    assert body["ok"] is False and body["error"]["code"] == "bad_request", body
    assert "6 to 10 digits" in body["error"]["message"]
    assert short not in body["error"]["message"]
    after = snapshot(rig.config.ledger.path)
    for table in ("technicians", "audit"):
        assert after[table] == before[table], table
    assert rig.ledger.settings.technician_by_pin(code_digest(key, short)) is None

    args = {"technician_id": "tech-7", "pin_digest": code_digest(key, "0" + short.zfill(5))}
    jti = await asyncio.to_thread(cloud.send, SITE, "technician.set_pin", args)
    assert (await result_of(cloud, jti))["ok"] is True  # six digits, leading zeros and all
