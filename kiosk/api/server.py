"""The local API server: a Unix socket (mode 0660), JSON lines, events to subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any

from kiosk.api.handlers import Api, Caller
from kiosk.api.protocol import MAX_LINE, ProtocolError, decode_request, encode, fail, ok
from kiosk.domain.errors import AlreadyRunning, CannotCreate, KioskError
from kiosk.files import create_failure, make_folder
from kiosk.tasks import cancel_all

log = logging.getLogger(__name__)
_QUEUE = 256


class Hub:
    """Fan-out of events to subscribed connections; a slow reader loses its oldest events."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_QUEUE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues.discard(queue)

    def publish(self, event: str, data: dict[str, Any]) -> None:
        message = {"event": event, "data": data}
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)


def _peer_is_admin(writer: asyncio.StreamWriter) -> bool:
    """Root, or the daemon's own user, may make technician calls without a PIN session."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


async def check_socket_free(path: Path) -> bool:
    """KioskError if another daemon serves `path`; True if a stale socket file is left there.

    The daemon asks this before it touches the ledger or the bus: a second
    `kiosk run` must not recover (or pulse) what the running one is doing.
    """
    if not (path.exists() or path.is_symlink()):
        return False
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise CannotCreate(
            f"cannot create the API socket {path}: a file that is not a socket is there "
            "(remove it, or fix `api.socket` in the config)",
            path=str(path),
        )
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return True
    writer.close()
    raise AlreadyRunning(
        f"Another daemon is serving {path}: this one would fight it for the doors and the "
        "ledger (stop it first: `systemctl stop kiosk`; or give this config its own "
        "`api.socket` and `ledger.path`)",
        path=str(path),
    )


class ApiServer:
    def __init__(self, api: Api, path: Path, hub: Hub) -> None:
        self.api = api
        self.path = Path(path)
        self.hub = hub
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._busy = 0  # requests being handled right now
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Bind the socket; a stale socket file left by a crash is replaced."""
        make_folder("the API socket's folder", self.path.parent, "api.socket")
        if await check_socket_free(self.path):
            self.path.unlink()
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_LINE + 1
            )
        except OSError as exc:
            raise create_failure("the API socket", self.path, exc, "api.socket") from exc
        os.chmod(self.path, 0o660)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop accepting; give requests in flight (a door being opened) `grace_s` to finish."""
        if self._server is not None:
            self._server.close()
        if grace_s > 0 and self._busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
        await cancel_all(self._clients)
        if self._server is not None:  # only a socket this server bound is its to remove
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        caller = Caller(admin=_peer_is_admin(writer))
        queue: asyncio.Queue[dict[str, Any]] | None = None
        pump: asyncio.Task[None] | None = None
        lock = asyncio.Lock()  # one writer at a time: replies and events interleave whole
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    await self._send(
                        writer,
                        lock,
                        fail(
                            None,
                            {
                                "code": "too_large",
                                "message": f"request longer than {MAX_LINE} bytes",
                            },
                        ),
                    )
                    continue
                except ConnectionError:
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                self._busy += 1
                self._idle.clear()
                try:
                    reply = await self._handle(caller, line)
                finally:
                    self._busy -= 1
                    if not self._busy:
                        self._idle.set()
                if reply.get("ok") and reply.get("result", {}).get("subscribed") and queue is None:
                    queue = self.hub.subscribe()
                    pump = asyncio.get_running_loop().create_task(self._pump(queue, writer, lock))
                await self._send(writer, lock, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # close() ends connections by cancelling them. This handler is the
            # stream protocol's callback task: ending it normally keeps asyncio
            # from logging the cancellation as an error on every clean stop.
            pass
        except Exception:  # never a silent drop: the peer sees EOF, the log says why
            log.exception("API connection failed")
        finally:
            if queue is not None:
                self.hub.unsubscribe(queue)
            if pump is not None:
                pump.cancel()
            writer.close()
            # A second cancel (the loop shutting down) may land here: the task is
            # ending anyway, and a CancelledError out of this callback task is logged
            # by asyncio as an error.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._clients.discard(task)

    async def _handle(self, caller: Caller, line: bytes) -> dict[str, Any]:
        request_id: Any = None
        try:
            request_id, call, args, session = decode_request(line)
            caller.session = session
            if call == "subscribe":
                return ok(request_id, {"subscribed": True})
            if call == "hello" and args.get("role") == "public":
                caller.admin = False  # a client may only lower its own rights
            return ok(request_id, await self.api.dispatch(caller, call, args))
        except ProtocolError as exc:
            return fail(request_id, {"code": exc.code, "message": str(exc)})
        except KioskError as exc:
            return fail(request_id, exc.to_dict())
        except Exception:
            log.exception("API call failed")
            return fail(request_id, {"code": "internal", "message": "internal error; see the log"})

    async def _pump(
        self,
        queue: asyncio.Queue[dict[str, Any]],
        writer: asyncio.StreamWriter,
        lock: asyncio.Lock,
    ) -> None:
        while True:
            message = await queue.get()
            await self._send(writer, lock, message)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, lock: asyncio.Lock, message: dict) -> None:
        async with lock:
            writer.write(encode(message))
            await writer.drain()
