"""Where a SimBus meets a client: a real pseudo-terminal (Modbus RTU) or a TCP port (Modbus TCP).

The pty link is one `os.openpty()` pair. The simulator owns the master end;
the client opens the slave's path (/dev/pts/N, or a symlink to it) exactly as
it would open /dev/ttyUSB0: pyserial, pymodbus's AsyncModbusSerialClient,
libmodbus all work. The simulator keeps its own handle on the slave open, so
clients may come and go (a master whose slave has no open handle reads EIO),
and puts the slave in raw mode at the bus's speed before anyone opens it.
A pty ignores the baud rate, so the simulator reads the client's line
settings back from the slave and treats frames sent at the wrong speed or
format as garbage, as a real 8N1 bus would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from firmware_bridge.simboard.bus import SimBus
from firmware_bridge.simboard.server import RtuServer, serve_tcp_connection

log = logging.getLogger(__name__)


class PtyLink(NamedTuple):
    """The client's end of a pty link and the coroutine function that tears it down."""

    path: str
    stop: Callable[[], Awaitable[None]]


def _speed(baudrate: int) -> int:
    speed = getattr(termios, f"B{baudrate}", None)
    if speed is None:
        raise ValueError(f"no termios speed for {baudrate} baud")
    return speed


def _set_line(fd: int, baudrate: int) -> None:
    """Raw 8N1 at `baudrate`: no echo, no newline translation, every byte as it comes."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = _speed(baudrate)
    attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)) | termios.CS8
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _line_matches(fd: int, baudrate: int) -> bool:
    """Whether the client set the slave to the bus's speed and 8N1."""
    _, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(fd)
    speed = _speed(baudrate)
    return (
        ospeed == speed
        and ispeed in (0, speed)
        and cflag & termios.CSIZE == termios.CS8
        and not cflag & (termios.PARENB | termios.CSTOPB)
    )


class SimPty:
    """The simulator's side of one pty link: a new `os.openpty()` pair, its slave raw 8N1.

    The master is read without blocking; the slave stays open here (clients come and
    go). `link`: also make this symlink to the slave (replacing a symlink there).
    `serve` starts reading and returns the PtyLink whose `stop` undoes all of it.
    """

    def __init__(self, baudrate: int, link: str | None = None) -> None:
        self.baudrate = baudrate
        self.link = link
        self.master, self.slave = os.openpty()
        try:
            _set_line(self.slave, baudrate)
            os.set_blocking(self.master, False)
            self.path = os.ttyname(self.slave)
            if link:
                if os.path.islink(link):
                    os.unlink(link)
                os.symlink(self.path, link)
        except BaseException:
            os.close(self.master)
            os.close(self.slave)
            raise

    def line_matches(self) -> bool:
        """Whether the client set the slave to the bus's speed and 8N1."""
        return _line_matches(self.slave, self.baudrate)

    def write(self, data: bytes) -> None:
        """Send `data` to the client; dropped (and logged) when nobody reads the client end."""
        try:
            os.write(self.master, data)
        except BlockingIOError:  # nobody reads the client end: the reply is lost on the wire
            log.warning("pty %s: client end full, reply dropped", self.path)

    def serve(
        self,
        on_data: Callable[[bytes], None],
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> PtyLink:
        """Hand every read of the client's bytes to `on_data`; `stop` (safe twice) stops
        reading, awaits `on_stop`, closes both ends and removes the symlink."""
        loop = asyncio.get_running_loop()
        master = self.master

        def readable() -> None:
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                return
            except OSError as exc:  # cannot happen while we hold the slave; never spin on it
                log.error("pty %s: read failed (%s), no longer serving", self.path, exc)
                loop.remove_reader(master)
                return
            on_data(data)

        loop.add_reader(master, readable)
        stopped = False

        async def stop() -> None:
            nonlocal stopped
            if stopped:
                return
            stopped = True
            loop.remove_reader(master)
            if on_stop is not None:
                await on_stop()
            os.close(master)
            os.close(self.slave)
            if self.link and os.path.islink(self.link):
                os.unlink(self.link)

        return PtyLink(self.link or self.path, stop)


async def serve_pty(
    bus: SimBus,
    *,
    baudrate: int = 115200,
    wire_timing: bool = True,
    check_line: bool = True,
    link: str | None = None,
    precise: bool = False,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> PtyLink:
    """Serve `bus` as Modbus RTU on a new pty; return the path a client opens and `stop`.

    `link`: also make this symlink to the slave (replaced if it is a symlink
    already), handy for a config file that names a fixed port. `await stop()`
    ends serving, closes both ends and removes the symlink; it is safe twice.
    `sleep` holds each reply back for its wire time and the bus's `slow_s` (see RtuServer).
    """
    pty = SimPty(baudrate, link)
    server = RtuServer(
        bus,
        pty.write,
        baudrate=baudrate,
        wire_timing=wire_timing,
        line_ok=pty.line_matches if check_line else None,
        precise=precise,
        sleep=sleep,
    )
    server.start()
    return pty.serve(server.feed, server.stop)


class SimTcpServer:
    """A listening Modbus TCP port for a SimBus; `close()` also ends every open connection."""

    def __init__(self, bus: SimBus) -> None:
        self.bus = bus
        self.server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @classmethod
    async def start(cls, bus: SimBus, host: str, port: int) -> SimTcpServer:
        sim = cls(bus)
        sim.server = await asyncio.start_server(sim._connected, host, port)
        return sim

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio runs every connection callback in a task
        self._connections[task] = writer
        try:
            # close() cancels a connection held in a slow reply; that is its normal end here.
            with contextlib.suppress(asyncio.CancelledError):
                await serve_tcp_connection(self.bus, reader, writer)
        finally:
            del self._connections[task]

    @property
    def host(self) -> str:
        return str(self._sockname()[0])

    @property
    def port(self) -> int:
        return int(self._sockname()[1])

    @property
    def address(self) -> str:
        """HOST:PORT as the CLI prints it (IPv6 hosts in brackets)."""
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def _sockname(self) -> tuple[str, int]:
        if self.server is None or not self.server.sockets:
            raise RuntimeError("the simulated TCP board is not listening")
        return self.server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for task, writer in list(self._connections.items()):
            writer.close()
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))

    async def __aenter__(self) -> SimTcpServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve_tcp(bus: SimBus, host: str = "127.0.0.1", port: int = 0) -> SimTcpServer:
    """Serve `bus` as Modbus TCP on host:port (port 0: a free one; read it from `.port`)."""
    return await SimTcpServer.start(bus, host, port)
