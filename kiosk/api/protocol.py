"""Local API v1 wire format: one JSON object per line, each way.

Request:  {"id": 7, "call": "code.submit", "args": {"code": "123456"}, "session": "..."}
Reply:    {"id": 7, "ok": true, "result": {...}}
          {"id": 7, "ok": false, "error": {"code": "invalid_code", "message": "...", ...}}
Event:    {"event": "door.opened", "data": {...}}   (only after a "subscribe" call)

`id` is the caller's and is echoed back (any JSON scalar). A line that is not
a JSON object, or is longer than MAX_LINE bytes, gets an error reply with
id null and the connection stays open. Strict JSON only: NaN and Infinity
(which Python's json accepts and would echo back) and text that is not
valid Unicode (lone surrogates, which UTF-8 cannot carry back) are refused.
"""

from __future__ import annotations

import json
import math
from typing import Any

API_VERSION = 1
MAX_LINE = 64 * 1024


class ProtocolError(Exception):
    """A request that cannot be understood; `code` is stable."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


def encode(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: \u-escapes are still valid JSON
        return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_request(line: bytes) -> tuple[Any, str, dict[str, Any], str | None]:
    """(id, call, args, session) of one request line, or ProtocolError."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"request longer than {MAX_LINE} bytes", "too_large")
    try:
        message = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # incl. JSONDecodeError, UnicodeDecodeError
        raise ProtocolError(f"not JSON: {str(exc)[:200]}") from None
    try:  # lone surrogates decode, but cannot be stored, logged as UTF-8 or echoed back
        json.dumps(message, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("not valid Unicode text (a lone surrogate escape)") from None
    except RecursionError:
        raise ProtocolError("nested too deeply") from None
    if not isinstance(message, dict):
        raise ProtocolError("a request is a JSON object")
    request_id = message.get("id")
    if request_id is not None and not isinstance(request_id, str | int | float | bool):
        raise ProtocolError("id must be a string or a number")
    if isinstance(request_id, float) and not math.isfinite(request_id):
        raise ProtocolError("id must be a finite number")
    call = message.get("call")
    if not isinstance(call, str) or not call:
        raise ProtocolError("call must be a non-empty string")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("args must be an object")
    session = message.get("session")
    if session is not None and not isinstance(session, str):
        raise ProtocolError("session must be a string")
    return request_id, call, args, session


def ok(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": result}


def fail(request_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": error}
