"""GET /metrics over HTTP/1.0 on the daemon's event loop (asyncio; no thread, no framework)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

#: A scraper gets this long to send its request head, and at most this much of it.
REQUEST_TIMEOUT_S = 10.0
MAX_HEAD = 8192


class MetricsServer:
    def __init__(self, host: str, port: int, exposition: Callable[[], bytes]) -> None:
        self.host, self.port = host, port
        self._exposition = exposition
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and listen (OSError when the address is taken or not ours)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        log.info("metrics at http://%s:%d/metrics", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            line = head[:MAX_HEAD].split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] not in ("GET", "HEAD"):
                status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
            elif line[1].split("?", 1)[0] != "/metrics":
                status, body, kind = "404 Not Found", b"see /metrics\n", "text/plain"
            else:
                try:
                    status, body, kind = "200 OK", self._exposition(), CONTENT_TYPE_LATEST
                except Exception:  # a bug or a ledger error: this scrape fails, the daemon runs on
                    log.exception("collecting the metrics failed")
                    status, body, kind = "500 Internal Server Error", b"see the log\n", "text/plain"
            header = (
                f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode("latin-1") + (b"" if line[:1] == ["HEAD"] else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a scraper that hung up or sent no request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
