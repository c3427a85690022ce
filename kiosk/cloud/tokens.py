"""Command tokens: JWS compact, EdDSA (Ed25519), verified with PyJWT against the cloud's key.

The kiosk checks, in this order: the text is a JWS whose header says
`alg: EdDSA` (anything else, `none` and `HS*` included, is `bad_signature`),
the signature against the configured cloud public key (`bad_signature`), the
claims `jti` (a string), `sub`, `iat`, `exp` are present and well typed
(`malformed`), `sub` is this site (`wrong_site`), the lifetime `exp - iat`
is at most `max_lifetime_s` (`policy.command_max_lifetime_s`; else `expired`:
a token valid for days is one a thief could replay for days), and the times
with 60 s of leeway on the kiosk's own trusted clock (`expired`, also for
`iat`/`nbf` in the future). Only then are `cmd` and `args` looked at (by
commands.py).

Only verification lives here: signing (and the private key) is the cloud's,
in the separate cloud tool (kiosk_cloud.signing, `kiosk-cloud`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ALGORITHM = "EdDSA"
LEEWAY_S = 60
#: The longest command lifetime (exp - iat) accepted unless the policy says otherwise (s).
MAX_LIFETIME_S = 3600
#: Bigger payloads are not parsed at all (a command is a few hundred bytes).
MAX_TOKEN_BYTES = 16_384
_JTI = re.compile(r"[\x21-\x7e]{1,128}")
_REQUIRED = ("jti", "sub", "iat", "exp")


class TokenRejected(Exception):
    """A token that failed a check. `code` is the contract's error code."""

    def __init__(self, code: str, message: str, jti: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.jti = jti


@dataclass(frozen=True)
class Command:
    """A verified command."""

    jti: str
    cmd: Any  # checked by the dispatcher: a bad cmd is `malformed`, and recorded
    args: Any
    claims: dict[str, Any]


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def readable_jti(text: str) -> str | None:
    """The `jti` of a token whose signature may be bad, if it is a sane string; else None."""
    try:
        claims = jwt.decode(text, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti if isinstance(jti, str) and _JTI.fullmatch(jti) else None


class Verifier:
    """Checks command tokens for one site against the cloud's public key."""

    def __init__(
        self,
        public_key: Ed25519PublicKey | None,
        site_id: str,
        max_lifetime_s: int = MAX_LIFETIME_S,
    ) -> None:
        self.public_key = public_key
        self.site_id = site_id
        self.max_lifetime_s = max_lifetime_s

    def verify(self, payload: bytes, now: datetime) -> Command:
        """The verified command, or TokenRejected (its `jti` set when one could be read)."""
        if len(payload) > MAX_TOKEN_BYTES:
            raise TokenRejected("malformed", "The command is too long.")
        try:
            text = payload.decode("ascii").strip()
        except UnicodeDecodeError:
            raise TokenRejected("malformed", "A command is JWS compact text.") from None

        def rejected(code: str, message: str) -> TokenRejected:
            # The jti is read (unverified) only for a token that fails: a good one
            # is not decoded an extra time on its way to the door.
            return TokenRejected(code, message, readable_jti(text))

        if self.public_key is None:
            raise rejected("bad_signature", "No cloud public key is configured.")
        # One parse: PyJWT reads the header, refuses any alg but EdDSA (`none` and
        # HS* included: InvalidAlgorithmError) and only then checks the signature.
        try:
            claims = jwt.decode(
                text,
                self.public_key,
                algorithms=[ALGORITHM],
                # Times are checked below on the kiosk's trusted clock, not time.time().
                options={
                    "require": list(_REQUIRED),
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise rejected("bad_signature", "The signature does not verify.") from None
        except jwt.InvalidAlgorithmError:
            raise rejected("bad_signature", f"alg must be {ALGORITHM}.") from None
        except jwt.DecodeError:
            raise rejected("malformed", "Not a JWS compact token.") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise rejected("malformed", f"Bad claims: {exc}") from None
        return self._claims(claims, now)

    def _claims(self, claims: dict[str, Any], now: datetime) -> Command:
        jti = claims.get("jti")
        if not isinstance(jti, str) or not _JTI.fullmatch(jti):
            raise TokenRejected("malformed", "jti must be 1 to 128 printable characters.")
        for name in ("iat", "exp", "nbf"):
            value = claims.get(name)
            if name in claims and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise TokenRejected("malformed", f"{name} must be a number (seconds).", jti)
        if claims.get("sub") != self.site_id:
            raise TokenRejected(
                "wrong_site", f"This command is for another site ({claims.get('sub')!r}).", jti
            )
        lifetime = claims["exp"] - claims["iat"]
        if lifetime > self.max_lifetime_s:
            raise TokenRejected(
                "expired",
                f"The command's lifetime (exp - iat) is {lifetime:.0f} s, over this bank's "
                f"limit of {self.max_lifetime_s} s (policy.command_max_lifetime_s).",
                jti,
            )
        t = now.timestamp()
        if claims["exp"] + LEEWAY_S <= t:
            raise TokenRejected("expired", "The command has expired.", jti)
        for name in ("iat", "nbf"):
            if name in claims and claims[name] - LEEWAY_S > t:
                raise TokenRejected("expired", f"The command is not valid yet ({name}).", jti)
        return Command(jti, claims.get("cmd"), claims.get("args"), claims)
