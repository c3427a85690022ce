"""The local API server: a Unix socket (mode 0660), JSON lines, events to subscribers.

It holds a flood: a local process opening and closing connections as fast as
it can must not keep the technician's `kiosk` commands out. The listen queue
is long (BACKLOG), at most MAX_CONNECTIONS are served at once (the rest wait
in the queue, unaccepted, costing the daemon nothing), and a connection that
sends no request for IDLE_TIMEOUT_S is closed (one subscribed to events is
not idle: it is listening). The clients wait for room in the queue (see
kiosk.api.connect) instead of failing at once.
"""

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

from kiosk.api.connect import connect_unix
from kiosk.api.handlers import Api, Caller
from kiosk.api.protocol import MAX_LINE, ProtocolError, decode_request, encode, fail, ok
from kiosk.domain.errors import AlreadyRunning, CannotCreate, KioskError
from kiosk.files import create_failure, make_folder
from kiosk.tasks import cancel_all

log = logging.getLogger(__name__)
_QUEUE = 256

#: Listen queue length; Linux caps it at net.core.somaxconn (4096 by default since 5.4).
BACKLOG = 4096
#: Connections served at once; more wait in the listen queue until one ends.
MAX_CONNECTIONS = 64
#: A connection with no request for this long (and no event subscription) is closed (s).
#: Long enough for a technician to type a PIN at `kiosk tech set-pin`.
IDLE_TIMEOUT_S = 120.0
#: How long the start-up check waits for a daemon already serving the socket (s).
PROBE_WAIT_S = 2.0
#: After accept() fails for want of file descriptors or memory, wait this long (s).
ACCEPT_PAUSE_S = 0.5


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
        # A blocking connect: a daemon whose listen queue is full (flooded) is alive,
        # and must not be taken for a file left by a crash.
        probe = await asyncio.to_thread(connect_unix, str(path), PROBE_WAIT_S)
    except (ConnectionRefusedError, FileNotFoundError):
        return True  # nobody listens: a file left by a crash
    except BlockingIOError:
        pass  # someone listens, but is too busy to take the connection: alive
    except OSError as exc:  # may not even try it (permissions): not ours to replace
        raise create_failure("the API socket", path, exc, "api.socket") from exc
    else:
        probe.close()
    raise AlreadyRunning(
        f"Another daemon is serving {path}: this one would fight it for the doors and the "
        "ledger (stop it first: `systemctl stop kiosk`; or give this config its own "
        "`api.socket` and `ledger.path`)",
        path=str(path),
    )


class ApiServer:
    def __init__(
        self,
        api: Api,
        path: Path,
        hub: Hub,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.api = api
        self.path = Path(path)
        self.hub = hub
        self.idle_timeout_s = idle_timeout_s
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(max_connections)
        self._clients: set[asyncio.Task[None]] = set()
        self._busy = 0  # requests being handled right now
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def connections(self) -> int:
        """Connections being served now (never more than `max_connections`)."""
        return len(self._clients)

    async def start(self) -> None:
        """Bind the socket; a stale socket file left by a crash is replaced."""
        make_folder("the API socket's folder", self.path.parent, "api.socket")
        if await check_socket_free(self.path):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            os.chmod(self.path, 0o660)  # before listen(): no one connects through a wider mode
            listener.listen(BACKLOG)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            raise create_failure("the API socket", self.path, exc, "api.socket") from exc
        self._listener = listener
        self._acceptor = asyncio.get_running_loop().create_task(self._accept(), name="api-accept")

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop accepting; give requests in flight (a door being opened) `grace_s` to finish."""
        if self._acceptor is not None:
            await cancel_all([self._acceptor])
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
        if grace_s > 0 and self._busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
        await cancel_all(self._clients)
        if self._listener is not None:  # only a socket this server bound is its to remove
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _accept(self) -> None:
        """Accept while a slot is free; with none free, callers wait in the listen queue."""
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            await self._slots.acquire()
            try:
                conn, _addr = await loop.sock_accept(self._listener)
            except (ConnectionAbortedError, InterruptedError):
                self._slots.release()
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM: let some go first
                self._slots.release()
                log.warning("API socket: accept failed (%s); pausing", exc.strerror or exc)
                await asyncio.sleep(ACCEPT_PAUSE_S)
                continue
            except BaseException:
                self._slots.release()
                raise
            task = loop.create_task(self._connection(conn))
            self._clients.add(task)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._clients.discard(task)
        self._slots.release()

    async def _connection(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_LINE + 1)
        except (OSError, asyncio.CancelledError):
            conn.close()
            return
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        caller = Caller(admin=_peer_is_admin(writer))
        queue: asyncio.Queue[dict[str, Any]] | None = None
        pump: asyncio.Task[None] | None = None
        lock = asyncio.Lock()  # one writer at a time: replies and events interleave whole
        try:
            while True:
                try:
                    if queue is None:  # a subscriber is listening, not idle
                        line = await asyncio.wait_for(reader.readline(), self.idle_timeout_s)
                    else:
                        line = await reader.readline()
                except TimeoutError:
                    log.debug("API connection idle for %g s; closed", self.idle_timeout_s)
                    break
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
            # close() ends connections by cancelling them; ending normally here
            # keeps a clean stop from looking like a failure.
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
