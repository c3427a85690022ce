"""One connected paho client driven by the asyncio loop: its socket is read and written there.

paho's external-loop API (`loop_read`, `loop_write`, `loop_misc` and the
`on_socket_*` callbacks, as Home Assistant's MQTT integration uses it)
instead of `loop_start()`'s thread: every paho callback then runs on the
loop, between two of its steps, so nothing is handed across threads and no
second thread competes with the loop for the GIL while a backlog drains.

`connect()` itself blocks (DNS, TCP, the TLS handshake) and runs in an
executor before `attach`; it writes the CONNECT packet itself, from that
thread, because no write callback is installed yet. Everything after
`attach` happens on the loop's thread.

Never call `detach` from inside a paho callback: paho holds its
(non-reentrant) callback lock there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

log = logging.getLogger(__name__)

#: Seconds between paho's housekeeping calls (keepalive PINGREQ, a PINGRESP overdue).
MISC_S = 1.0


class PahoOnLoop:
    """Reads, writes and keeps alive one paho client's connection from `loop`.

    `on_lost(reason)` is told when the driver itself gives the connection up
    (a read or write that raised); paho's own `on_disconnect` covers the rest.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: paho.Client,
        misc_s: float = MISC_S,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.loop, self.client, self.misc_s = loop, client, misc_s
        self.on_lost = on_lost
        self._sock: Any = None
        self._misc: asyncio.Task[None] | None = None

    def attach(self) -> None:
        """Take over a client whose `connect()` returned: read, write and tick from now on."""
        client = self.client
        sock = client.socket()
        if sock is None:
            raise OSError("the MQTT connection closed before it could be attached")
        self._sock = sock
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._wrote_all
        self.loop.add_reader(sock, self._read)
        self._misc = self.loop.create_task(self._housekeeping(), name="mqtt-misc")
        client.loop_write()  # anything queued meanwhile; registers the writer if more is left

    def detach(self) -> None:
        """Say DISCONNECT if the socket takes it now, then close; idempotent."""
        client, sock = self.client, self._sock
        if sock is not None:
            with contextlib.suppress(Exception):
                client.disconnect()  # queues DISCONNECT; writing it closes the socket
                client.loop_write()
        if self._sock is not None:
            # The DISCONNECT did not fit (a full send buffer). Cut the connection under
            # paho and let it read the end itself, so it closes the socket and runs its
            # own callbacks (on_disconnect, ours) rather than keep a dead socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                client.loop_read()
        if self._sock is not None:  # still not closed: forget it, close it
            self._closed(client, None, sock)
            with contextlib.suppress(OSError):
                sock.close()
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    # --- paho's callbacks and the loop's ----------------------------------------

    def _read(self) -> None:
        client, sock = self.client, self._sock
        try:
            client.loop_read()
            # TLS: whole records already decrypted sit in the SSL object, where the
            # selector cannot see them; read them before waiting for the socket again.
            pending = getattr(sock, "pending", None)
            while pending is not None and client.socket() is sock and pending() > 0:
                client.loop_read()
        except Exception:  # never leave a reader behind that raises on every byte
            log.exception("MQTT read failed; closing the connection")
            self._give_up("a read failed")

    def _write(self) -> None:
        try:
            self.client.loop_write()
        except Exception:
            log.exception("MQTT write failed; closing the connection")
            self._give_up("a write failed")

    def _give_up(self, reason: str) -> None:
        self.detach()
        if self.on_lost is not None:
            self.on_lost(reason)

    def _want_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        if sock is self._sock:  # paho may still speak of a socket already given up
            self.loop.add_writer(sock, self._write)

    def _wrote_all(self, _client: Any, _userdata: Any, sock: Any) -> None:
        if sock is self._sock:
            self.loop.remove_writer(sock)

    def _closed(self, _client: Any, _userdata: Any, sock: Any) -> None:
        if sock is not self._sock:
            return
        self._sock = None
        with contextlib.suppress(Exception):
            self.loop.remove_reader(sock)
        with contextlib.suppress(Exception):
            self.loop.remove_writer(sock)

    async def _housekeeping(self) -> None:
        while self._sock is not None:
            await asyncio.sleep(self.misc_s)
            if self.client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return
