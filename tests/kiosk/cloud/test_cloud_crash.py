"""The daemon SIGKILLed: its last will says offline (retained); a restart drains the rest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from cloudrig import PREFIX, SITE, Observer, cloud_client, wait_for, write_public_key

CHILD = Path(__file__).with_name("daemon_child.py")


class Child:
    def __init__(self, state: Path, port: int, pem: Path, queue: int = 0) -> None:
        argv = [sys.executable, str(CHILD), str(state), str(port), str(pem)]
        if queue:
            argv += ["--queue", str(queue)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    async def line(self, prefix: str, timeout: float = 20.0) -> list[str]:
        async def read() -> list[str]:
            while True:
                text = await asyncio.to_thread(self.proc.stdout.readline)
                if not text:
                    raise AssertionError(f"the child exited (rc {self.proc.poll()})")
                if text.startswith(prefix):
                    return text.split()

        return await asyncio.wait_for(read(), timeout)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)


def depth(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        conn.close()


async def test_daemon_killed_mid_backlog_restart_drains_the_rest(tmp_path, broker, cloud_key):
    broker.require("mqtt5")  # the kiosk's link speaks MQTT 5
    state = tmp_path / "kiosk"
    pem = write_public_key(cloud_key, tmp_path / "cloud.pem")
    observer = Observer(broker)
    await asyncio.to_thread(observer.connect)
    child = Child(state, broker.port, pem, queue=6000)
    try:
        _, first, last = await child.line("QUEUED")
        first, last = int(first), int(last)
        await wait_for(lambda: observer.take() >= 1000, timeout=20, step=0.001)
        child.kill()
    finally:
        if child.proc.poll() is None:
            child.kill()
    left = depth(state / "ledger.db")
    assert 0 < left < 6000, left
    child = Child(state, broker.port, pem)
    try:
        _, ready = await child.line("READY")
        assert int(ready) >= left  # nothing was lost by the kill
        await wait_for(lambda: observer.take() >= last - first + 1, timeout=30, step=0.01)
        await wait_for(lambda: depth(state / "ledger.db") == 0, timeout=10)
    finally:
        assert child.stop() == 0
        await asyncio.to_thread(observer.close)
    observer.check_complete(first, last)


async def test_last_will_is_retained_when_the_daemon_is_killed(tmp_path, broker, cloud_key):
    broker.require("mqtt5")  # the kiosk's link speaks MQTT 5
    state = tmp_path / "kiosk"
    pem = write_public_key(cloud_key, tmp_path / "cloud.pem")
    child = Child(state, broker.port, pem)
    watcher = await asyncio.to_thread(cloud_client, broker)
    try:
        await child.line("READY")
        topic = f"{PREFIX}/{SITE}/status"
        await asyncio.to_thread(watcher.subscribe, topic)

        def online_flags() -> list[bool]:
            return [json.loads(m.payload)["online"] for m in watcher.receive(0.05)]

        await wait_for(lambda: True in online_flags(), timeout=10)
        child.kill()
        await wait_for(lambda: False in online_flags(), timeout=10)
    finally:
        if child.proc.poll() is None:
            child.kill()
        await asyncio.to_thread(watcher.close)
    # a client that arrives later still reads "offline": the will was retained
    late = await asyncio.to_thread(cloud_client, broker)
    try:
        await asyncio.to_thread(late.subscribe, topic)
        got = next(iter(late.receive(1.0)))
        status = json.loads(got.payload)
        assert got.retain and status["online"] is False and "ts" in status and "version" in status
    finally:
        await asyncio.to_thread(late.close)
    assert os.path.exists(state / "ledger.db")
