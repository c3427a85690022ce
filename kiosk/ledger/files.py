"""File modes of the ledger and its copies: 0640 at most, whatever the process's umask.

The ledger holds every parcel's state, the code digests and the audit log;
a backup holds the same. Neither may be world-readable, and the bank must
not depend on systemd's UMask= for that (a technician running `kiosk run`
from a shell has umask 022). SQLite gives the `-wal` and `-shm` files it
creates the main file's mode, so making the main file private first is
enough for new files; existing ones (from an older version, or a restore
with the wrong mode) are tightened each time the ledger is opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

#: Read-write for the owner (the daemon's user), read for its group, nothing for others.
LEDGER_MODE = 0o640
#: The files SQLite keeps beside a ledger in WAL mode.
COMPANIONS = ("-wal", "-shm", "-journal")


def create_private(path: str | Path) -> None:
    """Create `path` empty with LEDGER_MODE; FileExistsError if anything is there already."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, LEDGER_MODE)
    try:
        os.fchmod(fd, LEDGER_MODE)  # the umask may have taken bits off, never added: set exactly
    finally:
        os.close(fd)


def make_private(path: str | Path) -> None:
    """Create the ledger file private if missing; take wider bits off it and its companions."""
    main = Path(path)
    if main.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file", str(main))
    if not main.exists():
        # Created meanwhile by someone else: tightened below like any other.
        with contextlib.suppress(FileExistsError):
            create_private(main)
    for file in (main, *(Path(f"{main}{suffix}") for suffix in COMPANIONS)):
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and mode & ~LEDGER_MODE:
            os.chmod(file, mode & LEDGER_MODE)
