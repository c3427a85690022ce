"""sd_notify as systemd sees it, and stopping with a door operation in flight.

A test socket stands in for systemd's: a bound AF_UNIX datagram socket (a
file, or an abstract '@name'), given to the daemon as $NOTIFY_SOCKET with
$WATCHDOG_USEC. The real `kiosk run` process must say READY=1 only once its
API answers, keep sending WATCHDOG=1, and say STOPPING=1 on SIGTERM. The
watchdog must fall silent when a bus owner hangs (in-process: a bank whose
read_doors never returns), so that systemd restarts a daemon that no longer
supervises its doors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from support.daemon_proc import DaemonProcess, short_dir, write_config
from support.daemon_rig import DaemonRig
from support.invariants import check_invariants

from firmware_bridge.bank import BoardInfo, ChannelRef, DoorState, LockBank
from kiosk.api.aclient import AsyncApiClient
from kiosk.daemon.notify import Notifier
from kiosk.ledger.db import Ledger

WATCHDOG_USEC = 400_000  # systemd's WatchdogSec=0.4: a ping every 0.2 s
INTERVAL_S = WATCHDOG_USEC / 1e6 / 2
WAIT_S = 30.0  # generous: nothing asserts on elapsed time but the watchdog's silence


class NotifySink:
    """systemd's end of $NOTIFY_SOCKET: every datagram, with the monotonic time it arrived."""

    def __init__(self, state: Path, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"kiosk-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            path = state / "notify.sock"
            self.sock.bind(str(path))
            self.address = str(path)
        self.messages: list[tuple[float, str]] = []

    def close(self) -> None:
        self.sock.close()

    def receive(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = data.decode()
        self.messages.append((time.monotonic(), message))
        return message

    def wait_for(self, prefix: str, timeout: float = WAIT_S, alive=lambda: True) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert alive(), f"the daemon died; notifications so far: {self.messages}"
            message = self.receive(0.2)
            if message is not None and message.startswith(prefix):
                return message
        raise AssertionError(f"no {prefix!r} within {timeout} s; got {self.messages}")

    def count(self, message: str) -> int:
        return sum(1 for _, m in self.messages if m == message)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_after_the_api_answers_then_watchdog_then_stopping(tmp_path, abstract):
    state = short_dir(tmp_path)
    config = write_config(state)
    sink = NotifySink(state, abstract)
    env = {"NOTIFY_SOCKET": sink.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    daemon = DaemonProcess(config, env=env)
    daemon.env.pop("WATCHDOG_PID", None)
    try:
        daemon.start(wait=False)
        alive = lambda: daemon.proc is not None and daemon.proc.poll() is None  # noqa: E731
        ready = sink.wait_for("READY=1", alive=alive)
        # READY=1 was sent once the API answered: one try, no polling, must succeed.
        hello = daemon.hello()
        assert hello is not None and hello["site"] == "proc-01", daemon.log()
        assert "STATUS=serving 4 lockers" in ready.splitlines()
        assert not any(m.startswith("WATCHDOG=1") for _, m in sink.messages[:-1])

        while sink.count("WATCHDOG=1") < 5:
            sink.wait_for("WATCHDOG=1", alive=alive)

        daemon.signal(signal.SIGTERM)
        sink.wait_for("STOPPING=1")
        assert daemon.wait() == 0
        assert sum(1 for _, m in sink.messages if m.startswith("READY=1")) == 1
    finally:
        daemon.close()
        sink.close()


# --- in-process: a bus owner that hangs -------------------------------------------


class HangingBank:
    """A LockBank whose read_doors blocks (as a wedged bus owner would) while `hang` is set."""

    def __init__(self, inner: LockBank) -> None:
        self.inner = inner
        self.hang = asyncio.Event()
        self.release = asyncio.Event()
        self.reads = 0

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def unlock(self, ref: ChannelRef) -> None:
        await self.inner.unlock(ref)

    async def read_doors(self, units=None) -> dict[ChannelRef, DoorState]:
        self.reads += 1
        if self.hang.is_set():
            await self.release.wait()
        return await self.inner.read_doors(units)

    def describe(self) -> list[BoardInfo]:
        return self.inner.describe()


class AsyncSink:
    """The notify socket read on the event loop of an in-process daemon."""

    def __init__(self, state: Path) -> None:
        self.path = state / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)
        self.pings: list[float] = []

    async def next(self, timeout: float) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout)
        except TimeoutError:
            return None
        message = data.decode()
        if message == "WATCHDOG=1":
            self.pings.append(loop.time())
        return message

    async def pings_within(self, count: int, timeout: float = WAIT_S) -> None:
        loop = asyncio.get_running_loop()
        start, deadline = len(self.pings), loop.time() + timeout
        while len(self.pings) - start < count:
            assert loop.time() < deadline, f"fewer than {count} WATCHDOG=1 in {timeout} s"
            await self.next(0.5)

    async def silence(self, quiet_s: float, timeout: float = WAIT_S) -> float:
        """Wait for a gap of `quiet_s` with no WATCHDOG=1; returns when the last ping came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = loop.time()
        while loop.time() - last < quiet_s:
            assert loop.time() < deadline, f"WATCHDOG=1 kept coming for {timeout} s"
            message = await self.next(quiet_s - (loop.time() - last))
            if message == "WATCHDOG=1":
                last = loop.time()
        return last

    def close(self) -> None:
        self.sock.close()


async def test_watchdog_stops_while_a_bus_owner_hangs_and_resumes_after(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    state = short_dir(tmp_path)
    sink = AsyncSink(state)
    rig = DaemonRig(state, notifier=Notifier(str(sink.path)))
    bank = HangingBank(rig.bank)
    rig.daemon.bank = bank  # the daemon's only bank: supervision reads through it
    try:
        async with rig:
            assert await sink.next(WAIT_S) == "READY=1\nSTATUS=serving 4 lockers"
            await sink.pings_within(3)  # flowing while supervision completes its polls

            with caplog.at_level(logging.ERROR, logger="kiosk.daemon.app"):
                bank.hang.set()
                await sink.silence(quiet_s=4 * INTERVAL_S)
            assert "door supervision stalled" in caplog.text
            # The API still answers: only the watchdog tells systemd something is wrong.
            client = AsyncApiClient(rig.socket)
            assert (await client.connect())["site"] == "rig-01"
            await client.close()

            bank.hang.clear()
            bank.release.set()  # the bus answers again: polls complete, pings resume
            await sink.pings_within(3)
    finally:
        bank.release.set()
        sink.close()


# --- stopping in the middle of a door operation -------------------------------------


def ops(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT kind, label, state FROM door_ops ORDER BY id"))
    finally:
        conn.close()


def assert_consistent(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        check_invariants(conn)
    finally:
        conn.close()


async def test_stop_lets_a_door_operation_in_flight_finish(tmp_path):
    state = short_dir(tmp_path)
    async with DaemonRig(state) as rig:
        ledger_path = Path(rig.config.ledger.path)
        tech = AsyncApiClient(rig.socket)
        await tech.connect()
        parcel = await tech.call("parcels.announce", size="M")
        await tech.close()

        rig.doors.jammed.add("B-1")  # the M locker will not open: retry, then the L one
        kiosk = AsyncApiClient(rig.socket)
        await kiosk.connect(public=True)
        submit = asyncio.create_task(kiosk.call("code.submit", code=parcel["delivery_code"]))
        for _ in range(500):
            if rig.doors.pulses["B-1"] >= 1:
                break
            await asyncio.sleep(0.01)
        assert rig.doors.pulses["B-1"] >= 1 and not submit.done()

        await rig.daemon.stop()  # SIGTERM's path, while the courier's request waits on B-1

        result = await asyncio.wait_for(submit, WAIT_S)
        assert (result["role"], result["locker"]) == ("courier", "C-1")
        await kiosk.close()
        assert not Path(rig.socket).exists()
        # The request ran to its end: B-1's jam recorded, no operation left PENDING.
        journal = ops(ledger_path)
        assert ("delivery", "B-1", "FAILED") in journal
        assert ("delivery", "C-1", "OPEN") in journal  # the courier is at the open door
        assert all(s != "PENDING" for _, _, s in journal)
        assert_consistent(ledger_path)

    # The next start settles the open operation the way the design says ("in doubt,
    # the parcel is inside"), and nothing is left unfinished.
    async with DaemonRig(state) as again:
        ledger = Ledger.open(ledger_path)
        try:
            assert ledger.doors.unfinished() == []
            row = ledger.parcels.find(parcel["parcel_id"])
            assert row is not None
            assert (row.status.value, row.locker, row.needs_check) == ("DELIVERED", "C-1", True)
            assert ledger.parcels.locker("B-1").status.value == "OUT_OF_SERVICE"
        finally:
            ledger.close()
        assert_consistent(ledger_path)
        assert all(s in ("FAILED", "RECOVERED") for _, _, s in ops(ledger_path))
        assert again.daemon.service is not None


async def test_stop_does_not_wait_forever_on_a_hung_bus(tmp_path):
    state = short_dir(tmp_path)
    rig = DaemonRig(state)
    bank = HangingBank(rig.bank)
    rig.daemon.bank = bank
    try:
        async with rig:
            tech = AsyncApiClient(rig.socket)
            await tech.connect()
            opened = await tech.call("door.open", locker="A-1", reason="inspection")
            assert opened["locker"] == "A-1"  # its door stays open: the operation is unfinished
            await tech.close()
            bank.hang.set()
            # stop() reads the doors once more to record closings: that read never returns.
            await asyncio.wait_for(rig.daemon.stop(), WAIT_S)
            assert rig.daemon.ledger is None and not Path(rig.socket).exists()
    finally:
        bank.release.set()
