"""A small blocking client of the local API, for the `kiosk` commands."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from kiosk.api.connect import CONNECT_WAIT_S, connect_unix
from kiosk.api.protocol import MAX_LINE, encode


class DaemonUnreachable(Exception):
    """No daemon answers on the socket (exit code 3)."""


class ApiError(Exception):
    """The daemon refused a call; `error` is its {"code", "message", ...}."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "refused"))
        self.error = error
        self.code = str(error.get("code", "error"))


class ApiClient:
    def __init__(
        self, path: str, timeout_s: float = 30.0, connect_wait_s: float = CONNECT_WAIT_S
    ) -> None:
        """Connect, waiting up to `connect_wait_s` for room; `timeout_s` bounds each reply."""
        self.path = path
        self._ids = itertools.count(1)
        self.session: str | None = None
        try:
            # Blocking, so that a full listen queue is waited out, not failed at once.
            self._sock = connect_unix(path, connect_wait_s)
        except FileNotFoundError:
            raise DaemonUnreachable(
                f"No daemon socket at {path}. Is the daemon running? "
                "Start it with `systemctl start kiosk` (or `kiosk run`)."
            ) from None
        except PermissionError:
            raise DaemonUnreachable(
                f"Permission denied on {path}: run as the kiosk user or a member of its group."
            ) from None
        except BlockingIOError:
            raise DaemonUnreachable(
                f"The daemon did not take the connection on {path} within "
                f"{connect_wait_s:g} s: it is overloaded (a local process flooding its "
                "socket?). Try again; check `systemctl status kiosk`."
            ) from None
        except OSError as exc:
            raise DaemonUnreachable(
                f"The daemon does not answer on {path} ({exc.strerror or exc}). "
                "Check `systemctl status kiosk`."
            ) from None
        self._sock.settimeout(timeout_s)
        self._file = self._sock.makefile("rb")

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, name: str, **args: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "call": name, "args": args}
        if self.session:
            message["session"] = self.session
        try:
            self._sock.sendall(encode(message))
            for reply in self._lines():
                if "event" in reply:
                    continue
                if reply.get("id") != request_id:
                    continue
                if reply.get("ok"):
                    return dict(reply.get("result") or {})
                raise ApiError(dict(reply.get("error") or {}))
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise DaemonUnreachable(f"The daemon went away during {name} ({exc}).") from None
        raise DaemonUnreachable(f"The daemon closed the connection during {name}.")

    def events(self) -> Iterator[dict[str, Any]]:
        """Subscribe, then yield events as they come."""
        self.call("subscribe")
        for message in self._lines():
            if "event" in message:
                yield message

    def _lines(self) -> Iterator[dict[str, Any]]:
        while True:
            line = self._file.readline(MAX_LINE + 1)
            if not line:
                return
            yield json.loads(line)
