"""Technician PINs: 6 to 10 digits, checked on every way a PIN is set, digest included.

A PIN opens the maintenance screen, and with it every door, so it must not
be weaker than one parcel's code (6 digits). A PIN typed at the shell or
sent as digits is checked by its length. The cloud's `technician.set_pin`
sends only the digest, HMAC-SHA256(site_code_key, pin); the bank holds the
key, so it can still tell a too-short PIN: there are only 111,110 PINs of 1
to 5 digits, and it computes each one's HMAC and compares (0.25 s measured
on the x86 development machine; a Raspberry Pi is several times slower, not
measured; PINs are set a few times a year). No other check of a digest is
possible without the PIN.
"""

from __future__ import annotations

import base64
import hmac

from kiosk.domain.errors import BadRequest

PIN_MIN, PIN_MAX = 6, 10
TOO_SHORT = (
    f"A technician PIN has {PIN_MIN} to {PIN_MAX} digits; choose a longer one. Nothing was changed."
)
_TOO_LONG = f"A technician PIN has {PIN_MIN} to {PIN_MAX} digits. Nothing was changed."


def pin_digits(pin: str) -> str:
    """The PIN's digits, or BadRequest naming the rule (never echoing the digits)."""
    digits = pin.strip()
    if not digits.isascii() or not digits.isdigit():
        raise BadRequest("A technician PIN has digits only. Nothing was changed.")
    if not PIN_MIN <= len(digits) <= PIN_MAX:
        raise BadRequest(TOO_SHORT if len(digits) < PIN_MIN else _TOO_LONG)
    return digits


def is_short_pin_digest(key: bytes, digest: str) -> bool:
    """True when `digest` (a well-formed code digest) is that of a PIN of fewer than PIN_MIN digits.

    Every PIN of 1 to PIN_MIN - 1 digits (leading zeros count: "0042" is a
    4-digit PIN) is hashed and compared with the raw 32 bytes of `digest`.
    """
    raw = base64.urlsafe_b64decode(digest + "=")
    for length in range(1, PIN_MIN):
        for number in range(10**length):
            if hmac.digest(key, b"%0*d" % (length, number), "sha256") == raw:
                return True
    return False
