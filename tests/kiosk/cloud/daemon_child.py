"""A daemon with the cloud link in a child process, for SIGKILL tests.

    python tests/kiosk/cloud/daemon_child.py STATE_DIR BROKER_PORT PUBLIC_KEY_PEM [--queue N]

Runs the real Daemon on the tests' GPIO rig (MockFactory pins, door
physics), the cloud link to 127.0.0.1:BROKER_PORT. With --queue N it puts N
events into the outbox in one transaction once the link is up. Prints
`READY <outbox depth>` (flushed) when started, `QUEUED <first> <last>` after
queueing, then runs until a signal ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[2]), str(HERE.parents[1]), str(HERE)]

from cloudrig import FAST, PREFIX  # noqa: E402
from support.daemon_rig import DaemonRig  # noqa: E402

from kiosk.config.model import MqttConfig  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("pem", type=Path)
    parser.add_argument("--queue", type=int, default=0)
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    rig = DaemonRig(args.state)
    rig.config = replace(
        rig.config,
        mqtt=MqttConfig("127.0.0.1", args.port, PREFIX, tls=False),
        keys=replace(rig.config.keys, cloud_public_key_file=args.pem),
    )
    rig.daemon.config = rig.config
    rig.daemon.cloud_timing = FAST
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with rig:
        ledger = rig.daemon.ledger
        print(f"READY {ledger.outbox.depth()}", flush=True)
        if args.queue:
            while not rig.daemon.online():
                await asyncio.sleep(0.01)
            now = datetime.now(UTC)
            with ledger.tx():
                first = ledger.outbox.last_seq() + 1
                for i in range(args.queue):
                    ledger.outbox.add(
                        now,
                        "door.closed",
                        {"label": "A-1", "parcel_id": None, "reason": f"bulk {i}"},
                    )
            print(f"QUEUED {first} {ledger.outbox.last_seq()}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
