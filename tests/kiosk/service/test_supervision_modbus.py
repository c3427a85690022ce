"""Door faults only a Modbus line can produce, through the real service and a simulated RTU bus.

The rig (support.rig, "modbus"): six lockers on two kiosk-v1 boards of one
RTU bus over a real pty; units 1 (A-1, A-2, A-10, B-1) and 2 (B-2, C-1).
Faults are scripted on the SimBus and its SimBoards; everything between the
service and the board is product code.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from support.clock import FakeClock
from support.rig import (
    DEFAULT_LOCKERS,
    FAST_POLICY,
    SIM_SILENCE_TIMEOUT_S,
    SIM_TIMEOUT_S,
    build_modbus_bank,
    simulated_lock_bank,
)

from firmware_bridge.bank import DoorState
from kiosk.config.model import PolicyConfig
from kiosk.domain.errors import HardwareError
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus

pytestmark = pytest.mark.backends(
    "modbus", reason="silent boards, stuck sensors and line faults exist only on a Modbus line"
)

UNIT_1 = ("A-1", "A-2", "A-10", "B-1")
UNIT_2 = ("B-2", "C-1")
FC_READ_COILS, FC_READ_DOORS, FC_WRITE_COIL = 1, 2, 5
#: The unlock pulse where an unlock's reply is lost: the read-back of the coil comes after
#: the silence is waited out (SIM_SILENCE_TIMEOUT_S) and may itself take as long as any
#: answer (SIM_TIMEOUT_S), and must still find the pulse running.
LOST_REPLY_PULSE_MS = int((SIM_SILENCE_TIMEOUT_S + SIM_TIMEOUT_S) * 1000)
#: Longer than that pulse, so the service's own retry never re-writes a running coil.
LOST_REPLY_POLICY = PolicyConfig(
    door_open_timeout_s=2 * LOST_REPLY_PULSE_MS / 1000, unlock_retries=1
)


def events(bank, type_: str) -> list[dict]:
    rows = bank.ledger.conn.execute(
        "SELECT body FROM outbox WHERE type = ? ORDER BY seq", (type_,)
    ).fetchall()
    return [json.loads(r[0]) for r in rows]


def door_events(bank) -> list[str]:
    sql = "SELECT type FROM outbox WHERE type LIKE 'door.%' OR type LIKE 'locker.%' ORDER BY seq"
    return [r[0] for r in bank.ledger.conn.execute(sql)]


async def supervise(bank, polls: int = 3) -> list[tuple[str, str]]:
    """`polls` supervision passes; every alert as (kind, label)."""
    alerts = []
    for _ in range(polls):
        alerts += [(a.kind, a.label) for a in (await bank.service.supervise()).alerts]
        await asyncio.sleep(0.005)
    return alerts


def states(bank) -> dict[str, DoorState]:
    return {label: bank.service.supervisor.state(label) for label in bank.service.ctx.channels}


def counters(bank, unit: int) -> dict[str, int]:
    (info,) = [b for b in bank.lock_bank.describe() if b.unit == unit]
    return dict(info.counters)


def frames(bank, since: int = 0) -> list[tuple[int | None, int | None, str]]:
    return [(f.unit, f.function_code, f.outcome) for f in list(bank.sim.frames)[since:]]


@pytest.mark.bus_silence
@pytest.mark.parametrize("where", ["board", "line"])
async def test_a_silent_board_makes_its_doors_unknown_after_three_polls_then_reads_again(
    bank, caplog, where
):
    caplog.set_level(logging.INFO)
    assert await supervise(bank) == []
    silent = UNIT_1 if where == "board" else UNIT_1 + UNIT_2
    if where == "board":
        bank.sim[1].silent = True  # unit 1 unplugged; unit 2 on the same line keeps answering
    else:
        bank.sim.silent = True  # the whole line: adapter unplugged, A/B cut
    assert await supervise(bank, 2) == []
    assert set(states(bank).values()) == {DoorState.SHUT}  # two misses: still known
    assert await supervise(bank, 1) == [("unknown", label) for label in silent]
    assert await supervise(bank, 2) == []  # raised once, never guessed
    assert {lb for lb, st in states(bank).items() if st is DoorState.UNKNOWN} == set(silent)
    offline = [r for r in caplog.records if "offline" in r.getMessage()]
    assert len(offline) == (1 if where == "board" else 2)  # the bus logs each board once
    assert not bank.lock_bank.describe()[0].online

    bank.sim.clear_faults()
    assert await supervise(bank, 1) == [("reads_again", label) for label in silent]
    assert await supervise(bank, 1) == []  # the way back is confirmed like any change ...
    assert set(states(bank).values()) == {DoorState.SHUT}  # ... and is no door movement
    assert sum("back online" in r.getMessage() for r in caplog.records) == len(offline)
    assert door_events(bank) == []  # an unreadable door is an alert, not a door event


@pytest.mark.bus_silence
async def test_a_door_forced_open_and_still_open_after_its_board_was_silent_is_forced_once(bank):
    await supervise(bank)
    bank.doors.open("C-1")
    assert await supervise(bank) == [("forced", "C-1")]
    bank.sim[2].silent = True
    assert await supervise(bank) == [("unknown", "B-2"), ("unknown", "C-1")]
    bank.sim[2].silent = False
    assert await supervise(bank) == [("reads_again", "B-2"), ("reads_again", "C-1")]
    assert events(bank, "door.forced") == [{"label": "C-1", "was": "shut"}]


@pytest.mark.bus_silence
async def test_an_unlock_on_a_silent_board_changes_nothing_and_works_once_it_answers(bank):
    await supervise(bank)
    bank.sim[1].silent = True
    ann = bank.service.announce(Size.S)
    with pytest.raises(HardwareError) as info:
        await bank.service.submit_code(ann.delivery_code)
    assert info.value.code == "hardware_error"
    assert bank.doors.pulses["A-1"] == 0 and not bank.doors.is_open("A-1")
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.parcel_id) == (LockerStatus.AVAILABLE, None)
    assert bank.ledger.parcels.get(ann.parcel_id).status is ParcelStatus.EXPECTED
    assert bank.ledger.doors.unfinished() == []
    assert door_events(bank) == []  # not a jam: no door was ever told to open
    bank.sim[1].silent = False
    res = await bank.service.submit_code(ann.delivery_code)  # set up again, then unlocked
    assert res.locker == "A-1" and bank.doors.is_open("A-1")
    assert bank.doors.pulses["A-1"] == 1


async def test_a_sensor_stuck_open_with_no_unlock_is_a_forced_door(bank):
    await supervise(bank)
    bank.doors.stuck_sensor("B-2", True)
    assert await supervise(bank) == [("forced", "B-2")]
    assert not bank.doors.is_open("B-2")  # the door itself never moved
    assert events(bank, "door.forced") == [{"label": "B-2", "was": "shut"}]
    bank.doors.stuck_sensor("B-2", None)
    assert await supervise(bank) == [("closed_unattended", "B-2")]


async def test_a_sensor_stuck_shut_is_a_door_that_did_not_open(bank):
    bank.doors.stuck_sensor("A-1", False)
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    assert res.locker == "A-2"
    assert bank.doors.pulses["A-1"] == 2  # a pulse and the retry, then out of service
    assert bank.doors.is_open("A-1")  # it did open: only a technician can tell
    locker = bank.ledger.parcels.locker("A-1")
    assert (locker.status, locker.note) == (LockerStatus.OUT_OF_SERVICE, "door_jammed")
    assert events(bank, "door.jammed") == [{"label": "A-1", "attempts": 2}]


@pytest.fixture
async def lost_reply_bank(tmp_path, code_key):
    """The Modbus rig for lost unlock frames: the silence timeout, LOST_REPLY_PULSE_MS pulses."""
    lock_bank = simulated_lock_bank(
        len(DEFAULT_LOCKERS), timeout_s=SIM_SILENCE_TIMEOUT_S, pulse_ms=LOST_REPLY_PULSE_MS
    )
    path = str(tmp_path / "ledger.db")
    rig = build_modbus_bank(
        path, code_key, FakeClock(), policy=LOST_REPLY_POLICY, lock_bank=lock_bank
    )
    try:
        await rig.start()
        yield rig
    finally:
        await rig.stop()


@pytest.mark.parametrize(
    ("fault", "on_the_wire"),
    [
        # The unlock reached the board, its reply was lost: read back, found on, not re-sent.
        ("reply_lost", [(FC_WRITE_COIL, "reply_lost"), (FC_READ_COILS, "reply")]),
        # The reply failed its CRC: the same.
        ("corrupted", [(FC_WRITE_COIL, "corrupted"), (FC_READ_COILS, "reply")]),
        # The unlock never reached the board: read back, found off, sent again.
        (
            "dropped",
            [(FC_WRITE_COIL, "dropped"), (FC_READ_COILS, "reply"), (FC_WRITE_COIL, "reply")],
        ),
    ],
    ids=["reply_lost", "corrupted", "dropped"],
)
async def test_a_lost_or_damaged_unlock_frame_is_retried_without_a_second_pulse(
    lost_reply_bank, fault, on_the_wire
):
    bank = lost_reply_bank
    ann = bank.service.announce(Size.S)
    since = len(bank.sim.frames)
    if fault == "corrupted":
        bank.sim.corrupt_next(1)
    else:
        bank.sim.drop_next(1, applied=fault == "reply_lost")
    res = await bank.service.submit_code(ann.delivery_code)  # the unlock is its first frame
    assert res.locker == "A-1" and bank.doors.is_open("A-1")
    unlock = [(c, o) for _, c, o in frames(bank, since) if c in (FC_WRITE_COIL, FC_READ_COILS)]
    assert unlock == on_the_wire
    assert bank.doors.pulses["A-1"] == 1  # one pulse, whichever way the frame was lost
    # The read-back finds a landed pulse only while it runs: it must outlast the timeout
    # waited out and the read-back's own answer.
    assert LOST_REPLY_PULSE_MS >= (SIM_SILENCE_TIMEOUT_S + SIM_TIMEOUT_S) * 1000
    assert LOST_REPLY_POLICY.door_open_timeout_s * 1000 > LOST_REPLY_PULSE_MS
    assert counters(bank, 1)["retries"] == 1
    bank.doors.close("A-1")
    assert [o.result for o in await bank.service.poll_doors()] == ["delivered"]
    assert door_events(bank) == ["door.opened", "door.closed"]


@pytest.mark.bus_silence
async def test_damaged_and_lost_door_reads_are_retried_without_an_alert(bank):
    assert await supervise(bank) == []
    bank.doors.open("C-1")  # a real change in the same polls: it must still come through
    since = len(bank.sim.frames)
    bank.sim.drop_next(1)  # board 1's next read is lost on the way in ...
    bank.sim.corrupt_next(1)  # ... and the reply to its retry fails its CRC
    assert await supervise(bank) == [("forced", "C-1")]
    assert frames(bank, since)[:3] == [
        (1, FC_READ_DOORS, "dropped"),
        (1, FC_READ_DOORS, "corrupted"),
        (1, FC_READ_DOORS, "reply"),
    ]
    health = counters(bank, 1)
    assert (health["timeouts"], health["bad_frames"], health["retries"]) == (1, 1, 2)
    assert all(b.online for b in bank.lock_bank.describe())
    assert set(states(bank).values()) - {DoorState.SHUT} == {DoorState.OPEN}


@pytest.mark.bus_silence
async def test_a_late_reply_is_never_taken_for_another_boards_doors(bank):
    """RTU has no transaction id: a reply after the timeout lands on the next request.

    Board 1's late FC02 reply (A-1 open) must not be read as board 2's doors
    (B-2 open): pymodbus checks the reply's unit id and the bus retries.
    """
    bank.doors.open("A-1")
    assert await supervise(bank) == []  # the first reading is a baseline
    bank.sim.slow_s = SIM_SILENCE_TIMEOUT_S * 1.5
    assert await supervise(bank, 1) == []
    bank.sim.slow_s = 0.0
    assert counters(bank, 1)["timeouts"] >= 1  # the replies did come late
    for _ in range(4):
        doors = await bank.lock_bank.read_doors()
        refs = bank.service.ctx.channels
        assert doors[refs["B-2"]] is not DoorState.OPEN
        assert doors[refs["A-1"]] is not DoorState.SHUT
    assert await supervise(bank) == []
    assert states(bank)["B-2"] is DoorState.SHUT and states(bank)["A-1"] is DoorState.OPEN


async def test_a_jammed_door_goes_out_of_service_and_the_next_locker_opens(bank):
    bank.doors.jammed.add("A-1")
    assert "A-1" in bank.doors.jammed and "A-2" not in bank.doors.jammed
    ann = bank.service.announce(Size.S)
    res = await bank.service.submit_code(ann.delivery_code)
    assert res.locker == "A-2" and bank.doors.is_open("A-2")
    first, retry = [p for p in bank.sim.pulses if (p.unit, p.channel) == (1, 0)]
    assert retry.t - first.t >= FAST_POLICY.door_open_timeout_s  # retried once, after the wait
    assert [e.kind for e in bank.sim[1].door(0).events] == []  # it never moved
    assert events(bank, "door.jammed") == [{"label": "A-1", "attempts": 2}]
    assert events(bank, "locker.out_of_service") == [{"label": "A-1", "reason": "door_jammed"}]
    bank.doors.jammed.discard("A-1")
    assert not bank.doors.jammed
    bank.doors.close("A-2")
    assert [o.result for o in await bank.service.poll_doors()] == ["delivered"]
    assert bank.ledger.parcels.get(ann.parcel_id).locker == "A-2"


async def test_a_door_forced_open_on_the_board_is_a_forced_event_with_its_label(bank):
    await supervise(bank)
    bank.sim[2].force_open(1)  # unit 2 channel 1: C-1, crowbarred
    assert await supervise(bank) == [("forced", "C-1")]
    assert [e.kind for e in bank.sim[2].door(1).events] == ["forced"]
    [event] = [e for e in bank.ledger.outbox.pending(limit=100) if e.type == "door.forced"]
    assert event.body == {"label": "C-1", "was": "shut"}
    assert "door.forced" in [r[0] for r in bank.ledger.conn.execute("SELECT action FROM audit")]
