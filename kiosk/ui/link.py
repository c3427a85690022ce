"""The keypad's one connection to the daemon: public, subscribed, and re-made with back-off.

The screen holds no secrets and opens no files: everything it shows or does
goes through this link to the daemon's local API. When the socket dies (the
daemon restarts, crashes or was never started) the link reports "down" once,
then keeps trying with a growing pause (`BACKOFF_S`, capped), and reports
"up" again when a `hello` answers. A call made while down raises
DaemonUnreachable at once, so the screen never waits on a dead socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from kiosk.api.aclient import AsyncApiClient
from kiosk.api.client import ApiError, DaemonUnreachable

__all__ = ["BACKOFF_S", "ApiError", "DaemonLink", "DaemonUnreachable"]

log = logging.getLogger(__name__)

#: Pauses between reconnection attempts, seconds; the last one repeats.
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
#: How often a live connection is checked for having closed, seconds.
WATCH_S = 0.1


class DaemonLink:
    """Owns the AsyncApiClient; `on_up(hello)`, `on_down()`, `on_event(event, data)` go up."""

    def __init__(
        self,
        socket_path: str,
        on_up: Callable[[dict[str, Any]], None],
        on_down: Callable[[], None],
        on_event: Callable[[str, dict[str, Any]], None],
        backoff_s: tuple[float, ...] = BACKOFF_S,
    ) -> None:
        self.socket_path = socket_path
        self.on_up = on_up
        self.on_down = on_down
        self.on_event = on_event
        self.backoff_s = backoff_s
        self.session: str | None = None  # a technician's token, sent with every call
        self.attempts = 0  # failed attempts since the link was last up
        self._client: AsyncApiClient | None = None

    @property
    def up(self) -> bool:
        return self._client is not None and self._client.connected

    async def run(self) -> None:
        """Connect, watch, reconnect: forever (cancel the worker to stop)."""
        was_up: bool | None = None
        while True:
            client = AsyncApiClient(self.socket_path, on_event=self.on_event)
            try:
                hello = await client.connect(public=True, subscribe=True)
            except (DaemonUnreachable, ApiError, OSError) as exc:
                await client.close()
                self.attempts += 1
                if was_up is not False:
                    log.warning("daemon not reachable on %s: %s", self.socket_path, exc)
                    self.on_down()
                was_up = False
                pause = self.backoff_s[min(self.attempts - 1, len(self.backoff_s) - 1)]
                await asyncio.sleep(pause)
                continue
            client.session = self.session
            self._client, self.attempts = client, 0
            if was_up is False:
                log.info("daemon reachable again on %s", self.socket_path)
            was_up = True
            self.on_up(hello)
            try:
                while client.connected:
                    await asyncio.sleep(WATCH_S)
            finally:
                self._client = None
                with contextlib.suppress(Exception):
                    await client.close()
            was_up = False
            self.on_down()

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        """One API call; ApiError when refused, DaemonUnreachable when there is no daemon."""
        client = self._client
        if client is None or not client.connected:
            raise DaemonUnreachable("not connected to the daemon")
        client.session = self.session
        return await client.call(name, **args)
