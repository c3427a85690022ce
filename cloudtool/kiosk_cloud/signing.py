"""Command signing, the cloud's half of kiosk/cloud/tokens.py: JWS compact, EdDSA (Ed25519).

The kiosk only verifies (kiosk.cloud.tokens.Verifier); the private key and
this code live on the cloud's side, never on a device.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.cloud.tokens import ALGORITHM


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def sign(
    key: Ed25519PrivateKey,
    site_id: str,
    cmd: str,
    args: dict[str, Any],
    now: datetime,
    ttl_s: int = 300,
    jti: str | None = None,
    **extra: Any,
) -> tuple[str, str]:
    """(jti, token): a command as the cloud sends it."""
    jti = jti or str(uuid.uuid4())
    t = int(now.timestamp())
    claims = {"jti": jti, "sub": site_id, "iat": t, "exp": t + ttl_s, "cmd": cmd, "args": args}
    claims.update(extra)
    return jti, jwt.encode(claims, key, algorithm=ALGORITHM)
