"""A child process for the crash test: runs one delivery or pickup and SIGKILLs itself at point N.

    python tests/support/crash_child.py --db FILE --key HEX --code CODE \
        --scenario delivery|pickup --kill-at N
    python tests/support/crash_child.py --serve      (a fork server: support.fork_server)

The ledger FILE is already set up (the parcel announced; for a pickup, also
delivered). The child builds the real service on it with a GpioLockBank over
gpiozero's MockFactory and the door physics of tests/support, types CODE, lets
the door spring open, closes it as the courier or customer would and lets
`poll_doors` commit. Nothing in the product knows it is being watched: the
kill points are
  * every SQL statement, just before SQLite runs it (sqlite3's own
    `set_trace_callback`), so a kill lands before each BEGIN, read, write and
    COMMIT (sqlite-utils' savepoints around a read are left out: a kill there
    is the same as one at the read);
  * just before and after the lock pulse (a LockBank wrapper);
  * just before and after the door physically opens, and before and after the
    person shuts it (a GpioDoorPhysics subclass);
  * once more when the scenario has finished, so the last COMMIT is covered
    from both sides.
At point N the child kills itself with SIGKILL: no `finally`, no atexit, no
flush of anything but what SQLite already wrote.

Output (stdout, one line each, flushed before the next step can run):
  POINT n WHAT       every point passed (n counts from 1)
  PULSED LABEL       the unlock pulse of LABEL's lock was started
  OPENED LABEL       LABEL's door is open (its sensor pin reads high)
  CLOSED LABEL       LABEL's door was shut by the person at it
  KILL n WHAT        dying now, at point n
  POINTS total       (--kill-at 0 only) the scenario finished after `total` points
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import replace
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_TESTS.parent), str(_TESTS)]

from gpiozero.pins.mock import MockFactory  # noqa: E402

from firmware_bridge.bank import BoardInfo, ChannelRef, DoorState, LockBank  # noqa: E402
from kiosk.config.model import PolicyConfig  # noqa: E402
from kiosk.service.locker_service import LockerService  # noqa: E402
from support.child_run import KillCounter, say  # noqa: E402
from support.clock import FakeClock  # noqa: E402
from support.fork_server import SERVE, serve  # noqa: E402
from support.physics import GpioDoorPhysics  # noqa: E402
from support.rig import build_bank  # noqa: E402

#: Generous door timeout: a door that opens late would mean a second pulse,
#: and so a different numbering of the points from one run to the next.
CHILD_POLICY = PolicyConfig(door_open_timeout_s=5.0, unlock_retries=1)

#: What each scenario ends with, from `poll_doors`.
EXPECTED_RESULT = {"delivery": "delivered", "pickup": "picked_up"}


#: The savepoint sqlite-utils wraps around every `Database.query` (a read).
_READ_SAVEPOINT = '"sqlite_utils_query"'
#: A quoted SQL literal ('' is a quote inside it).
_LITERAL = re.compile(r"'(?:[^']|'')*'")


def _short(literal: re.Match[str]) -> str:
    """'OPEN' and 'B-1' stay; uuids, hashes and times become '...'."""
    text = literal.group(0)
    return text if len(text) <= 14 else "'...'"


class KillPoints(KillCounter):
    """KillCounter, with SQL statements as points."""

    def sql(self, statement: str) -> None:
        """sqlite3 trace callback: runs before SQLite starts each statement.

        Long literals (uuids, hashes) are cut, so a point's name is the same in every run.
        sqlite-utils wraps each read query in a savepoint of its own; a kill at that
        savepoint or its release leaves the file as a kill at the query would, so
        those two are not points.
        """
        if _READ_SAVEPOINT in statement:
            return
        self("sql " + _LITERAL.sub(_short, " ".join(statement.split()))[:80])


class CountedBank:
    """A LockBank that passes everything to the real one, with points around each pulse."""

    def __init__(self, inner: LockBank, points: KillPoints, labels: dict[ChannelRef, str]):
        self.inner = inner
        self.points = points
        self.labels = labels

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def unlock(self, ref: ChannelRef) -> None:
        label = self.labels[ref]
        self.points(f"before pulse {label}")
        await self.inner.unlock(ref)
        say("PULSED", label)
        self.points(f"after pulse {label}")

    async def read_doors(self, units=None) -> dict[ChannelRef, DoorState]:
        return await self.inner.read_doors(units)

    def describe(self) -> list[BoardInfo]:
        return self.inner.describe()


class CountedPhysics(GpioDoorPhysics):
    """Door physics with points around every door movement."""

    def __init__(self, base: GpioDoorPhysics, points: KillPoints) -> None:
        super().__init__(base.factory, base.pins)
        self.points = points

    def open(self, label: str) -> None:
        self.points(f"before door {label} opens")
        super().open(label)
        say("OPENED", label)
        self.points(f"after door {label} opened")

    def close(self, label: str) -> None:
        self.points(f"before door {label} is shut")
        super().close(label)
        say("CLOSED", label)
        self.points(f"after door {label} was shut")


async def run(db: str, key: bytes, code: str, scenario: str, points: KillPoints) -> int:
    factory = MockFactory()
    rig = build_bank(db, factory, key, FakeClock(), policy=CHILD_POLICY)
    labels = {ref: label for label, ref in rig.service.ctx.channels.items()}
    service = LockerService(replace(rig.service.ctx, bank=CountedBank(rig.gpio, points, labels)))
    doors = CountedPhysics(rig.doors, points)
    await service.start()
    doors.start()  # after the bank claimed the pins: their pull-ups would read "open"
    rig.ledger.conn.set_trace_callback(points.sql)
    points.armed = True

    opened = await service.submit_code(code)
    doors.close(opened.locker)
    outcomes = await service.poll_doors()
    points("scenario done")

    points.armed = False
    rig.ledger.conn.set_trace_callback(None)
    await doors.stop()
    await rig.gpio.close()
    rig.ledger.close()
    factory.reset()
    results = [o.result for o in outcomes]
    if results != [EXPECTED_RESULT[scenario]]:
        print(f"{scenario}: poll_doors gave {results}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the set-up ledger file (changed in place)")
    parser.add_argument("--key", required=True, help="the site code key, hex")
    parser.add_argument("--code", required=True, help="the delivery or pickup code to type")
    parser.add_argument("--scenario", required=True, choices=sorted(EXPECTED_RESULT))
    parser.add_argument("--kill-at", type=int, required=True, help="0: count the points only")
    if argv is None and sys.argv[1:] == [SERVE]:
        return serve(main)
    args = parser.parse_args(argv)
    points = KillPoints(args.kill_at)
    status = asyncio.run(run(args.db, bytes.fromhex(args.key), args.code, args.scenario, points))
    if args.kill_at:
        print(f"point {args.kill_at} never came: only {points.count} points", file=sys.stderr)
        return 3
    say("POINTS", points.count)
    return status


if __name__ == "__main__":
    sys.exit(main())
