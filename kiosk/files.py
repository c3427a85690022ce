"""Folders and files the daemon makes at start, with a one-line error naming each it cannot."""

from __future__ import annotations

import errno
from pathlib import Path

from kiosk.domain.errors import CannotCreate


def one_line(text: str) -> str:
    """`text` with its line breaks folded: a reason must stay one line on stderr."""
    return " ".join(text.split())


def create_failure(what: str, path: Path, exc: OSError, key: str) -> CannotCreate:
    """CannotCreate for `path` (`what`, e.g. "the API socket's folder"; `key` its config key)."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = f"a file stands where a folder is needed: fix `{key}` in the config"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (
            "create it for the service user (systemd: StateDirectory=, RuntimeDirectory=), "
            f"or point `{key}` at a writable place"
        )
    elif exc.errno == errno.ENOSPC:
        fix = "the disk is full: free some space (`df -h`)"
    else:
        fix = f"check the path, or fix `{key}` in the config"
    return CannotCreate(
        one_line(f"cannot create {what} {path}: {reason} ({fix})"), path=str(path), reason=reason
    )


def make_folder(what: str, folder: Path, key: str) -> None:
    """mkdir -p `folder`, or CannotCreate naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise create_failure(what, folder, exc, key) from exc
