"""Door supervision on each real backend: forced doors, doors left open, unknown sensors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest
from support.clock import FakeClock

from firmware_bridge.bank import ChannelRef, DoorState
from kiosk.domain.sizes import Size


def events(bank, type_: str) -> list[dict]:
    rows = bank.ledger.conn.execute(
        "SELECT body FROM outbox WHERE type = ? ORDER BY seq", (type_,)
    ).fetchall()
    return [json.loads(r[0]) for r in rows]


async def settle(bank, polls: int = 3):
    reports = []
    for _ in range(polls):
        reports.append(await bank.service.supervise())
        await asyncio.sleep(0.005)
    return reports


async def test_door_opened_without_unlock_is_forced(bank):
    await settle(bank)
    bank.doors.open("A-2")
    reports = await settle(bank)
    alerts = [a for r in reports for a in r.alerts]
    assert [a.kind for a in alerts] == ["forced"]
    assert events(bank, "door.forced") == [{"label": "A-2", "was": "shut"}]
    bank.doors.close("A-2")
    reports = await settle(bank)
    assert [a.kind for r in reports for a in r.alerts] == ["closed_unattended"]
    assert events(bank, "door.closed")[-1]["reason"] == "unattended"
    assert bank.ledger.audit.verify().ok


async def test_a_delivery_door_is_not_forced(bank):
    await settle(bank)
    parcel = bank.service.announce(Size.S)
    opened = await bank.service.submit_code(parcel.delivery_code)
    reports = await settle(bank)
    assert not [a for r in reports for a in r.alerts]
    bank.doors.close(opened.locker)
    reports = await settle(bank)
    assert [o.result for r in reports for o in r.outcomes] == ["delivered"]
    assert events(bank, "door.forced") == []
    assert [e["reason"] for e in events(bank, "door.closed")] == ["delivery"]


async def test_one_flap_is_not_an_alarm(bank):
    await settle(bank)
    bank.doors.open("A-1")
    await bank.service.supervise()  # one reading open ...
    bank.doors.close("A-1")
    reports = await settle(bank)  # ... then shut again: a bounce, not a door
    assert not [a for r in reports for a in r.alerts]
    assert events(bank, "door.forced") == []


async def test_door_left_open_raises_once_and_prompts_again(bank):
    bank.service.ctx.policy = dataclasses.replace(bank.service.ctx.policy, left_open_s=0.15)
    await settle(bank)
    parcel = bank.service.announce(Size.M)
    opened = await bank.service.submit_code(parcel.delivery_code)
    await settle(bank, 1)
    bank.clock.elapse(0.1)
    assert not (await bank.service.supervise()).alerts  # open 0.1 s of 0.15: not yet
    bank.clock.elapse(0.1)
    first = await bank.service.supervise()
    assert [a.kind for a in first.alerts] == ["left_open"]
    bank.clock.elapse(0.2)
    again = await bank.service.supervise()
    assert [a.kind for a in again.alerts] == ["left_open"]  # the prompt repeats ...
    assert len(events(bank, "door.left_open")) == 1  # ... the alarm does not
    assert events(bank, "door.left_open")[0]["label"] == opened.locker
    bank.doors.close(opened.locker)
    reports = await settle(bank)
    assert [o.result for r in reports for o in r.outcomes] == ["delivered"]


class FlakyBank:
    """Wraps the real bank; reads of `failing` labels' channels come back UNKNOWN."""

    def __init__(self, inner, refs: dict[str, ChannelRef]) -> None:
        self.inner, self.refs, self.failing = inner, refs, set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def read_doors(self, units=None):
        states = await self.inner.read_doors(units)
        for label in self.failing:
            states[self.refs[label]] = DoorState.UNKNOWN
        return states


async def test_three_failed_reads_make_a_door_unknown_never_guessed(bank, caplog):
    flaky = FlakyBank(bank.service.ctx.bank, dict(bank.service.ctx.channels))
    bank.service.ctx.bank = flaky
    await settle(bank)
    assert bank.service.supervisor.state("B-1") is DoorState.SHUT
    flaky.failing.add("B-1")
    caplog.set_level(logging.INFO, logger="kiosk.service.supervision")
    reports = await settle(bank, 2)
    assert bank.service.supervisor.state("B-1") is DoorState.SHUT  # two misses: still known
    reports = await settle(bank, 5)
    assert [a.kind for r in reports for a in r.alerts] == ["unknown"]
    assert bank.service.supervisor.state("B-1") is DoorState.UNKNOWN
    assert sum("unknown" in m for m in caplog.messages) == 1  # logged once
    flaky.failing.clear()
    reports = await settle(bank)
    assert [a.kind for r in reports for a in r.alerts] == ["reads_again"]
    assert bank.service.supervisor.state("B-1") is DoorState.SHUT
    assert sum("reads again" in m for m in caplog.messages) == 1


async def test_an_outage_is_no_door_movement_but_a_change_across_it_is(bank):
    """A door forced open and still open after its sensor was unreadable is not forced again;
    one that was shut during the outage is reported closed."""
    flaky = FlakyBank(bank.service.ctx.bank, dict(bank.service.ctx.channels))
    bank.service.ctx.bank = flaky
    await settle(bank)
    bank.doors.open("C-1")
    assert [a.kind for r in await settle(bank) for a in r.alerts] == ["forced"]
    flaky.failing.add("C-1")
    assert [a.kind for r in await settle(bank) for a in r.alerts] == ["unknown"]
    flaky.failing.clear()
    assert [a.kind for r in await settle(bank) for a in r.alerts] == ["reads_again"]
    assert bank.service.supervisor.state("C-1") is DoorState.OPEN
    assert len(events(bank, "door.forced")) == 1  # still open: no second alarm
    flaky.failing.add("C-1")
    await settle(bank)
    bank.doors.close("C-1")  # shut while nobody could see it
    flaky.failing.clear()
    alerts = [a.kind for r in await settle(bank) for a in r.alerts]
    assert alerts == ["reads_again", "closed_unattended"]
    assert [e["reason"] for e in events(bank, "door.closed")] == ["unattended"]
    assert bank.ledger.audit.verify().ok


async def test_supervision_ignores_wall_clock_jumps(bank):
    bank.service.ctx.policy = dataclasses.replace(bank.service.ctx.policy, left_open_s=60)
    await settle(bank)
    parcel = bank.service.announce(Size.S)
    await bank.service.submit_code(parcel.delivery_code)
    assert isinstance(bank.clock, FakeClock)
    bank.clock.advance(days=30)
    reports = await settle(bank)
    assert not [a for r in reports for a in r.alerts]
    assert events(bank, "door.left_open") == []


@pytest.mark.parametrize("confirm", [1, 3])
async def test_confirm_reads_is_respected(bank, confirm):
    bank.service.supervisor.confirm_reads = confirm
    await settle(bank)
    bank.doors.open("C-1")
    seen = []
    for _ in range(confirm):
        seen.extend(a.kind for a in (await bank.service.supervise()).alerts)
    assert seen == ["forced"]
