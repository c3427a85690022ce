"""A child process for the daemon crash test: the real daemon runs one flow and SIGKILLs itself.

    python tests/support/daemon_crash_child.py --state DIR --scenario NAME --code CODE \
        --kill-at N [--code2 CODE]
    python tests/support/daemon_crash_child.py --serve      (a fork server: see ChildPool)

DIR holds `kiosk.toml` (a `simulated` bus: the built-in board on a real pty,
driven by the real Modbus backend), the site key and a prepared ledger. The
child runs `kiosk.daemon.app.Daemon` on that config, exactly as `kiosk run`
would build it (the lock bank comes from `kiosk.wiring.build_lock_bank`; the
only thing wrapped around it is a pass-through that marks each unlock), and
acts as the person at the keypad through the daemon's own Unix-socket API
(`AsyncApiClient`): it types CODE, waits for the reply that the door is open,
shuts the door on the simulated board as the person would, and waits for the
daemon's `door.outcome` event. Nothing in the product knows it is watched.

Kill points, counted once the daemon is up and idle:
  * every SQL statement that writes (BEGIN, INSERT, UPDATE, DELETE, COMMIT,
    ROLLBACK, savepoints), just before SQLite runs it, through sqlite3's own
    `set_trace_callback` on the daemon's ledger connection (`daemon.ledger`).
    Reads are left out: door supervision reads the journal on every poll, at
    moments that differ from run to run, and a kill at a read leaves the file
    as a kill at the write before it does. So the numbering is the same in
    every run, and point N of a counting run names the statement a kill at N
    lands on;
  * just before and after each unlock (the LockBank call), and when the
    simulated board applies the unlock write (`SimBus.on_frame`);
  * when the board first reports a door open, and before and after the
    person shuts it;
  * once more when the scenario has finished.
At point N the child kills itself with SIGKILL: no `finally`, no atexit, no
flush of anything but what SQLite already wrote. The simulated board dies
with it, so after a restart every door reads shut.

`--scenario recover` starts the daemon on a ledger a crash left behind and
counts the points of its start-up instead, from the moment its lock bank is
claimed: the journal recovery, then the first sweep (a crash during recovery).

Scenarios: delivery, pickup, collection (one code each), doesnt_fit (a
delivery whose courier says the parcel does not fit: the next size up is
opened), two_couriers (two deliveries at once: --code2 is the second), and
recover.

Output (stdout, one line each, flushed before the next step can run):
  POINT n WHAT       every point passed (n counts from 1)
  PULSED LABEL       the board applied an unlock write for LABEL's lock
  OPENED LABEL       the board reports LABEL's door open
  SHUT LABEL         the person shut LABEL's door
  REPLY JSON         the API's reply to a call
  OUTCOME JSON       a door.outcome event
  KILL n WHAT        dying now, at point n
  POINTS total       the scenario finished after `total` points (no kill came)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_TESTS.parent), str(_TESTS)]

from firmware_bridge.bank import BoardInfo, ChannelRef, DoorState, LockBank  # noqa: E402
from firmware_bridge.simboard import FrameRecord, SimBus  # noqa: E402
from kiosk.api.aclient import AsyncApiClient  # noqa: E402
from kiosk.api.client import ApiError  # noqa: E402
from kiosk.config.loader import load_config  # noqa: E402
from kiosk.config.model import KioskConfig  # noqa: E402
from kiosk.daemon.app import Daemon  # noqa: E402
from kiosk.daemon.notify import Notifier  # noqa: E402
from kiosk.wiring import build_lock_bank  # noqa: E402
from support.child_run import ChildRun, KillCounter, say  # noqa: E402
from support.fork_server import SERVE, ForkPool, serve  # noqa: E402

SCENARIOS = ("delivery", "pickup", "collection", "doesnt_fit", "two_couriers", "recover")
#: The SQL statements that change the file (or bracket a change).
_WRITES = (
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "SAVEPOINT",
    "RELEASE",
)
#: The savepoint sqlite-utils wraps around every `Database.query` (a read).
_READ_SAVEPOINT = '"sqlite_utils_query"'
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_FC_WRITE_COIL = 5
_COIL_ON = b"\xff\x00"
OUTCOME_TIMEOUT_S = 15.0
CHILD_TIMEOUT_S = 60.0


def _short(literal: re.Match[str]) -> str:
    """'OPEN' and 'B-1' stay; uuids, hashes and times become '...'."""
    text = literal.group(0)
    return text if len(text) <= 14 else "'...'"


class KillPoints(KillCounter):
    """KillCounter, with SQL statements as points."""

    def sql(self, statement: str) -> None:
        """sqlite3 trace callback: runs before SQLite starts each statement."""
        if _READ_SAVEPOINT in statement:
            return
        text = " ".join(statement.split())
        if not text.upper().startswith(_WRITES):
            return
        self("sql " + _LITERAL.sub(_short, text)[:80])


class MarkedBank:
    """The daemon's own lock bank, passed through, with points around each unlock.

    `on_start` runs once the bank is claimed: the daemon has opened its ledger
    by then, and its journal recovery has not run yet.
    """

    def __init__(
        self,
        inner: LockBank,
        points: KillPoints,
        labels: dict[ChannelRef, str],
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.points = points
        self.labels = labels
        self.on_start = on_start

    async def start(self) -> None:
        await self.inner.start()
        if self.on_start is not None:
            self.on_start()

    async def close(self) -> None:
        await self.inner.close()

    async def unlock(self, ref: ChannelRef) -> None:
        label = self.labels[ref]
        self.points(f"before unlock {label}")
        await self.inner.unlock(ref)
        self.points(f"after unlock {label}")

    async def read_doors(self, units=None) -> dict[ChannelRef, DoorState]:
        return await self.inner.read_doors(units)

    def describe(self) -> list[BoardInfo]:
        return self.inner.describe()


class BoardWatch:
    """Reads the simulated board after every frame: pulses applied, doors seen open."""

    def __init__(self, sim: SimBus, labels: dict[tuple[int, int], str], points: KillPoints):
        self.sim = sim
        self.labels = labels
        self.points = points
        self._seen = {key: 0 for key in labels}
        sim.on_frame = self.frame

    def frame(self, record: FrameRecord) -> None:
        raw = record.raw
        is_unlock = (
            record.outcome == "reply"
            and record.function_code == _FC_WRITE_COIL
            and raw[4:6] == _COIL_ON
        )
        if is_unlock and record.unit is not None:
            label = self.labels[(record.unit, int.from_bytes(raw[2:4], "big"))]
            say("PULSED", label)
            self.points(f"board pulsed {label}")
        for (unit, channel), label in self.labels.items():
            events = self.sim[unit].door(channel).events
            for event in events[self._seen[(unit, channel)] :]:
                if event.kind == "opened":
                    say("OPENED", label)
                    self.points(f"board reports door {label} open")
            self._seen[(unit, channel)] = len(events)

    def shut(self, label: str) -> None:
        unit, channel = next(key for key, name in self.labels.items() if name == label)
        self.points(f"before door {label} is shut")
        self.sim[unit].close(channel)
        self._seen[(unit, channel)] = len(self.sim[unit].door(channel).events)
        say("SHUT", label)
        self.points(f"after door {label} was shut")


class Person:
    """At the keypad: types codes over the daemon's API and hears its events."""

    def __init__(self, socket: str) -> None:
        self.outcomes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client = AsyncApiClient(socket, on_event=self._event)

    def _event(self, name: str, data: dict[str, Any]) -> None:
        if name == "door.outcome":
            say("OUTCOME", json.dumps(data, sort_keys=True))
            self.outcomes.put_nowait(data)

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        try:
            reply = await self.client.call(name, **args)
        except ApiError as exc:
            reply = {"ok": False, "error": exc.error}
        say("REPLY", json.dumps(reply, sort_keys=True, default=str))
        return reply

    async def outcome(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.outcomes.get(), OUTCOME_TIMEOUT_S)


def _sim_of(bank: Any, config: KioskConfig) -> SimBus:
    """The SimBus of the config's one simulated bus (the MultiBank of `build_lock_bank`)."""
    bus = next(b.name for b in config.buses if b.kind == "simulated")
    return bank.banks[bus].sim


async def _flow(scenario: str, person: Person, watch: BoardWatch, codes: list[str]) -> list[str]:
    """Run the scenario's keypad steps; the results of its door outcomes, in order."""
    results: list[str] = []
    if scenario == "two_couriers":
        first = await person.call("code.submit", code=codes[0])
        second = await person.call("code.submit", code=codes[1])
        watch.shut(second["locker"])
        results.append((await person.outcome())["result"])
        watch.shut(first["locker"])
        results.append((await person.outcome())["result"])
        return results
    opened = await person.call("code.submit", code=codes[0])
    if not opened.get("ok"):
        return [f"refused: {opened}"]
    if scenario == "doesnt_fit":
        outcome = await person.call("courier.doesnt_fit", locker=opened["locker"])
        if outcome.get("result") == "awaiting_close":
            watch.shut(opened["locker"])
            outcome = await person.outcome()
        results.append(outcome["result"])
        nxt = outcome.get("next") or {}
        if not nxt.get("locker"):
            return [*results, "no next locker"]
        watch.shut(nxt["locker"])
        results.append((await person.outcome())["result"])
        return results
    watch.shut(opened["locker"])
    results.append((await person.outcome())["result"])
    return results


EXPECTED = {
    "delivery": ["delivered"],
    "pickup": ["picked_up"],
    "collection": ["returned"],
    "doesnt_fit": ["released", "delivered"],
    "two_couriers": ["delivered", "delivered"],
    "recover": [],
}


async def _idle(daemon: Daemon) -> None:
    """Until supervision has read every door once; the first sweep ran before (it does not
    wait on anything). Idle then: polls of shut doors write nothing."""
    assert daemon.service is not None
    supervisor, labels = daemon.service.supervisor, [lk.label for lk in daemon.config.lockers]
    while any(supervisor.state(label) is DoorState.UNKNOWN for label in labels):
        await asyncio.sleep(0.005)


async def run(state: Path, scenario: str, codes: list[str], points: KillPoints) -> int:
    config = load_config(state / "kiosk.toml")
    inner = build_lock_bank(config)
    sim = _sim_of(inner, config)
    labels = {ChannelRef(lk.bus, lk.unit, lk.channel): lk.label for lk in config.lockers}
    watch = BoardWatch(sim, {(r.unit, r.channel): label for r, label in labels.items()}, points)
    daemon: Daemon

    def arm() -> None:  # from the bank's start: the ledger is open, recovery not yet run
        assert daemon.ledger is not None
        daemon.ledger.conn.set_trace_callback(points.sql)
        points.armed = True

    recovering = scenario == "recover"
    bank = MarkedBank(inner, points, labels, on_start=arm if recovering else None)
    daemon = Daemon(config, bank=bank, notifier=Notifier(""))
    await daemon.start()
    results: list[str] = []
    if recovering:
        await asyncio.sleep(0.1)  # the first supervision poll and sweep run too
    else:
        person = Person(str(config.api.socket))
        await person.client.connect(public=True, subscribe=True)
        await _idle(daemon)
        assert daemon.ledger is not None
        daemon.ledger.conn.set_trace_callback(points.sql)
        points.armed = True
        results = await _flow(scenario, person, watch, codes)
    points("scenario done")

    points.armed = False
    assert daemon.ledger is not None
    daemon.ledger.conn.set_trace_callback(None)
    if not recovering:
        await person.client.close()
        await asyncio.sleep(0.01)  # the server sees the connection end before it stops
    await daemon.stop()
    if results != EXPECTED[scenario]:
        print(f"{scenario}: outcomes {results}, expected {EXPECTED[scenario]}", file=sys.stderr)
        return 1
    return 0


# --- the parent's side: run a child, read what it printed ---------------------------


# ChildRun: tests/support/child_run.py


class ChildPool(ForkPool):
    """Fork servers (`--serve`, support.fork_server) of this script: each child is a fork
    of a process that has imported everything already, so a kill point costs a fork,
    not a Python start-up (~0.2 s)."""

    def __init__(self, size: int) -> None:
        super().__init__(Path(__file__), size, CHILD_TIMEOUT_S)
        self._jobs = 0

    async def child(self, state: Path, scenario: str, codes: list[str], kill_at: int) -> ChildRun:
        """Run one child on `state`; it dies at point `kill_at` (0: never)."""
        argv = ["--state", str(state), "--scenario", scenario, "--kill-at", str(kill_at)]
        for flag, code in zip(("--code", "--code2"), codes, strict=False):
            argv += [flag, code]
        self._jobs += 1
        out, err = state / f"child-{self._jobs}.out", state / f"child-{self._jobs}.err"
        return await self.run(argv, kill_at, out, err)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--state", required=True, type=Path, help="kiosk.toml, key and ledger")
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--code", default="", help="the code the person types")
    parser.add_argument("--code2", default="", help="two_couriers: the second courier's code")
    parser.add_argument("--kill-at", type=int, required=True, help="0: count the points only")
    if argv is None and sys.argv[1:] == [SERVE]:
        return serve(main)
    args = parser.parse_args(argv)
    points = KillPoints(args.kill_at)
    codes = [c for c in (args.code, args.code2) if c]
    status = asyncio.run(run(args.state, args.scenario, codes, points))
    say("POINTS", points.count)
    return status


if __name__ == "__main__":
    sys.exit(main())
