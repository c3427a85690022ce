"""An asyncio client of the local API (the keypad screen's): calls, plus an event stream."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from kiosk.api.client import ApiError, DaemonUnreachable
from kiosk.api.connect import connect_unix
from kiosk.api.protocol import MAX_LINE, encode


class ApiTimeout(DaemonUnreachable):
    """The daemon took longer than the caller would wait (it may still be working)."""


EventHandler = Callable[[str, dict[str, Any]], None]


class AsyncApiClient:
    """One connection; replies matched to calls by id, events handed to `on_event`."""

    def __init__(self, path: str, on_event: EventHandler | None = None) -> None:
        self.path = path
        self.on_event = on_event
        self.session: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._task is not None and not self._task.done()

    async def connect(self, public: bool = False, subscribe: bool = False) -> dict[str, Any]:
        try:
            # A blocking connect (in a thread) waits its turn in a full listen queue;
            # the loop's own non-blocking connect would fail at once with EAGAIN.
            sock = await asyncio.to_thread(connect_unix, self.path)
            self._reader, self._writer = await asyncio.open_unix_connection(
                sock=sock, limit=MAX_LINE + 1
            )
        except OSError as exc:
            raise DaemonUnreachable(f"No daemon answers on {self.path} ({exc}).") from None
        self._task = asyncio.get_running_loop().create_task(self._read())
        hello = await self.call("hello", **({"role": "public"} if public else {}))
        if subscribe:
            await self.call("subscribe")
        return hello

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_pending()

    async def call(self, name: str, timeout_s: float = 60.0, **args: Any) -> dict[str, Any]:
        if self._writer is None or not self.connected:
            raise DaemonUnreachable("not connected to the daemon")
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "call": name, "args": args}
        if self.session:
            message["session"] = self.session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._writer.write(encode(message))
            await self._writer.drain()
            reply = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:  # an OSError subclass since 3.11: catch it first
            raise ApiTimeout(f"no reply to {name} within {timeout_s:g} s") from None
        except (ConnectionError, OSError) as exc:
            raise DaemonUnreachable(f"the daemon went away ({exc})") from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("ok"):
            return dict(reply.get("result") or {})
        raise ApiError(dict(reply.get("error") or {}))

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                message = json.loads(line)
                if "event" in message:
                    if self.on_event is not None:
                        self.on_event(str(message["event"]), dict(message.get("data") or {}))
                    continue
                future = self._pending.get(message.get("id"))
                if future is not None and not future.done():
                    future.set_result(message)
        except (ConnectionError, ValueError):
            pass
        finally:
            self._fail_pending()

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DaemonUnreachable("the daemon closed the connection"))
        self._pending.clear()
