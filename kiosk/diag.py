"""`kiosk diag --out FILE.tar.gz`: the support bundle, with every secret left out or scrubbed.

What a support engineer asks for first: versions, the config (secrets and
key paths redacted), doctor's checks, the units' last journal lines, the
audit tail, the outbox, the board list. Never a key, a code, a PIN digest or
a certificate's private part: the config is re-emitted with those values
replaced, nothing is read from a key file into the bundle, and every text
is scrubbed of the key files' contents, their paths and anything shaped like
a code digest (43 base64url characters) or a PEM private key.
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import re
import sqlite3
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.doctor.local import DAEMON_UNIT, SCREEN_UNITS
from kiosk.domain.errors import EXIT_USAGE, ConfigError

JOURNAL_LINES = 1000
AUDIT_ROWS = 200
UNITS = (DAEMON_UNIT, *SCREEN_UNITS)
LIBRARIES = (
    "pymodbus",
    "pyserial",
    "gpiozero",
    "sqlite-utils",
    "paho-mqtt",
    "textual",
    "cryptography",
    "PyJWT",
    "prometheus_client",
)
REDACTED = "<redacted>"
#: Config keys whose values never go into the bundle: key and certificate paths, secrets.
_SECRET_KEY = re.compile(r"(_file$|key|secret|password|token|pin)", re.IGNORECASE)
_DIGEST = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)


@dataclass
class Scrubber:
    """Replaces the given secret strings, digest-shaped runs and PEM private keys in a text."""

    secrets: list[str] = field(default_factory=list)

    def add_file(self, path: Path) -> None:
        """The path, and the file's contents (if this user can read them), line by line."""
        self.secrets.append(str(path))
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        self.secrets += [line.strip() for line in text.splitlines() if len(line.strip()) >= 8]
        self.secrets.append(text.strip())

    def __call__(self, text: str) -> str:
        for secret in sorted({s for s in self.secrets if s}, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = _PEM_PRIVATE.sub(REDACTED, text)
        return _DIGEST.sub("<digest?>", text)


def redact_config(data: Any) -> Any:
    """The parsed TOML with the value of every secret-named key replaced (tables are walked)."""
    if isinstance(data, dict):
        return {
            k: redact_config(v)
            if isinstance(v, dict | list) or not _SECRET_KEY.search(k)
            else REDACTED
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact_config(v) for v in data]
    return data


def _versions() -> str:
    lines = [
        f"locker-kiosk {__version__}",
        f"python {sys.version.split()[0]}",
        f"sqlite {sqlite3.sqlite_version}",
        f"platform {platform.platform()}",
    ]
    for name in LIBRARIES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    try:
        pretty = next(
            line.split("=", 1)[1].strip('"')
            for line in Path("/etc/os-release").read_text().splitlines()
            if line.startswith("PRETTY_NAME=")
        )
        lines.append(f"os {pretty}")
    except (OSError, StopIteration):
        pass
    return "\n".join(lines) + "\n"


def _journal(unit: str) -> str:
    from kiosk.doctor.local import run_command

    done = run_command(
        ["journalctl", "-u", unit, "-n", str(JOURNAL_LINES), "--no-pager", "-o", "short-iso"]
    )
    if done is None:
        return "skipped: journalctl is not installed here\n"
    if done.returncode != 0:
        return f"skipped: journalctl exited {done.returncode}: {done.stderr.strip()}\n"
    return done.stdout


def collect(config_path: str) -> dict[str, str]:
    """File name -> text of every part of the bundle, before scrubbing."""
    from kiosk.config.loader import load_config
    from kiosk.doctor.run import checks

    parts: dict[str, str] = {"versions.txt": _versions()}
    scrub = Scrubber()
    try:
        raw = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
        parts["config.json"] = json.dumps(redact_config(raw), indent=2, default=str) + "\n"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        parts["config.json"] = json.dumps({"error": f"{config_path}: {exc}"}) + "\n"
    parts["doctor.json"] = json.dumps(
        {"checks": [c.to_dict() for c in checks(config_path)]}, indent=2
    )
    for unit in UNITS:
        parts[f"journal-{unit}.txt"] = _journal(unit)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        parts["ledger.json"] = json.dumps({"error": exc.message}) + "\n"
        return _scrubbed(parts, scrub)
    for path in (
        config.keys.site_code_key_file,
        config.keys.cloud_public_key_file,
        *(
            (config.mqtt.ca_file, config.mqtt.cert_file, config.mqtt.key_file)
            if config.mqtt
            else ()
        ),
    ):
        if path is not None:
            scrub.add_file(path)
    parts.update(_ledger_parts(config))
    parts["boards.json"] = json.dumps(_boards(config), indent=2) + "\n"
    return _scrubbed(parts, scrub)


def _scrubbed(parts: dict[str, str], scrub: Callable[[str], str]) -> dict[str, str]:
    return {name: scrub(text) for name, text in parts.items()}


def _ledger_parts(config: Any) -> dict[str, str]:
    from kiosk.ledger import readout

    try:
        conn = readout.open_read_only(config.ledger.path)
        try:
            depth, oldest = readout.outbox_figures(conn)
            tail = readout.audit_tail(conn, AUDIT_ROWS)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {"outbox.json": json.dumps({"error": f"{config.ledger.path}: {exc}"}) + "\n"}
    return {
        "outbox.json": json.dumps({"outbox_depth": depth, "oldest": oldest}) + "\n",
        "audit-tail.json": json.dumps(tail, indent=2) + "\n",
    }


def _boards(config: Any) -> dict[str, Any]:
    """The configured boards, and what the daemon says of them when it runs."""
    from kiosk.api.client import ApiClient, ApiError, DaemonUnreachable
    from kiosk.doctor.hardware import daemon_running

    out: dict[str, Any] = {
        "configured": [
            {"bus": b.bus, "unit": b.unit, "profile": b.profile, "channels": b.channels}
            for b in config.boards
        ],
        "buses": [{"name": b.name, "kind": b.kind} for b in config.buses],
    }
    if not daemon_running(config):
        out["daemon"] = "not running"
        return out
    try:
        with ApiClient(str(config.api.socket), timeout_s=30.0) as client:
            out["daemon"] = client.call("health")
    except (ApiError, DaemonUnreachable) as exc:
        out["daemon"] = f"running, not asked: {exc}"
    return out


#: What the bundle's name may end with: it is a gzip tar, and says so.
SUFFIXES = (".tar.gz", ".tgz")


def main(config_path: str, out: Path) -> int:
    """`kiosk diag --out OUT`: exit 0 with the bundle written, else one line why not.

    Exit 2 (bad usage) for a name that does not say gzip tar; 1 for an OUT
    that exists or cannot be written.
    """
    if not out.name.lower().endswith(SUFFIXES):
        print(
            f"error: --out {out}: the bundle is a gzip tar; give a name ending in "
            f"{' or '.join(SUFFIXES)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if out.exists() or not out.parent.is_dir():
        why = "exists already; choose a new name" if out.exists() else "has no such folder"
        print(f"error: {out} {why}", file=sys.stderr)
        return 1
    logging.disable(logging.WARNING)  # a silent board is in doctor.json, not on the screen
    try:
        write_bundle(out, collect(config_path))
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{out}: support bundle written (no keys, codes or PIN digests in it)")
    return 0


def write_bundle(out: Path, parts: dict[str, str]) -> None:
    """A new gzip tar at `out` (0600), one member per part under `kiosk-diag/`."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    now = time.time()
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in parts.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"kiosk-diag/{name}")
            info.size, info.mode, info.mtime = len(data), 0o600, int(now)
            tar.addfile(info, io.BytesIO(data))
