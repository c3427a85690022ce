"""Access codes: drawing them (CSPRNG) and their digests (the only form ever stored).

digest = base64url(HMAC-SHA256(site_code_key, code)), no padding; the message
is the code's ASCII digits; the key is the 32 bytes decoded from the key file.
The contract, shared with the cloud: docs/contracts/codes.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

from kiosk.domain.errors import BadRequest, ConfigError

KEY_BYTES = 32
#: 43 base64url characters; the last carries 4 bits, so its 2 low bits are zero (canonical).
_DIGEST = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def parse_code_key(text: str, source: str = "site_code_key_file") -> bytes:
    """Decode a key file's standard base64 (whitespace ignored) into exactly 32 bytes."""
    compact = "".join(text.split())
    try:
        key = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(source, "keys.site_code_key_file", "not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            source, "keys.site_code_key_file", f"must decode to {KEY_BYTES} bytes, got {len(key)}"
        )
    return key


def new_code_key_text() -> str:
    """A fresh site code key as a key file holds it (standard base64 + newline)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii") + "\n"


def normalise_code(code: str, length: int) -> str:
    """The digits a person typed, or BadRequest. Spaces and dashes are ignored."""
    digits = "".join(ch for ch in str(code) if ch not in " -")
    if not digits.isascii() or not digits.isdigit():
        raise BadRequest("A code has digits only.")
    if len(digits) != length:
        raise BadRequest(f"A code has {length} digits.")
    return digits


def code_digest(key: bytes, code: str) -> str:
    """base64url(HMAC-SHA256(key, code)) without padding."""
    mac = hmac.new(key, code.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def draw_code(length: int, taken: Callable[[str], bool], attempts: int = 100) -> str:
    """A uniformly random code of `length` digits for which `taken(code)` is False."""
    for _ in range(attempts):
        code = "".join(secrets.choice("0123456789") for _ in range(length))
        if not taken(code):
            return code
    raise RuntimeError("could not draw a free code; the code space is nearly exhausted")


def is_digest(text: object) -> bool:
    """True for a well-formed digest: 43 base64url characters (32 bytes, unpadded)."""
    # Not urlsafe_b64decode: it also takes '+' and '/' and drops stray characters.
    return isinstance(text, str) and _DIGEST.fullmatch(text) is not None
