"""PahoOnLoop against a real broker: closing a connection whose data cannot be written."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import Any

from cloudrig import wait_for

from kiosk.cloud.mqtt import Endpoint, new_client
from kiosk.cloud.onloop import PahoOnLoop


async def test_detach_with_a_full_send_buffer_lets_paho_close_and_report(broker):
    """A broker that stops reading (frozen, or a path that went dead) fills the kernel's
    buffers: paho's DISCONNECT cannot be written. detach() must still close the socket
    through paho, so paho reports the end and holds no dead socket to trip over later."""
    loop = asyncio.get_running_loop()
    client = new_client("onloop-test", Endpoint("127.0.0.1", broker.port))
    ends: list[Any] = []
    client.on_disconnect = lambda _c, _u, _f, reason, _p: ends.append(reason)
    rc = await loop.run_in_executor(None, client.connect, "127.0.0.1", broker.port, 60)
    assert rc == 0
    driver = PahoOnLoop(loop, client)
    driver.attach()
    await wait_for(client.is_connected, timeout=5)
    unraisable: list[Any] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        payload = b"x" * 1_000_000
        for _ in range(500):  # until the kernel takes no more (a few MB on loopback)
            client.publish("onloop/test", payload, qos=0)
            client.loop_write()
            if client.want_write():  # written as much as it would take: the rest waits
                break
        assert client.want_write(), "the send buffer never filled"
        client.loop_write()
        assert client.want_write()  # and it stays full: DISCONNECT cannot go out
        driver.detach()
        assert client.socket() is None  # paho closed it itself ...
        assert len(ends) == 1  # ... and said so, once
        driver.detach()  # idempotent
        del client, driver
        gc.collect()  # paho's __del__ must find nothing left to unregister
        assert unraisable == []
    finally:
        sys.unraisablehook = hook
        broker.proc.send_signal(signal.SIGCONT)
