"""`kiosk restore FILE` (daemon stopped) and pruning old nightly backups (`backup --prune`)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

from kiosk.domain.errors import EXIT_OK, AlreadyRunning, CannotCreate
from kiosk.ledger.files import COMPANIONS

#: The names kiosk-backup.service gives its copies; only these are ever pruned.
NIGHTLY = re.compile(r"ledger-\d{4}-\d{2}-\d{2}-\d{6}\.db")


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` nightly backups in `folder`; the ones removed.

    Newest by name: the name carries the time it was taken (a copy's mtime may
    not). Any other file in the folder is left alone.
    """
    backups = sorted(p for p in folder.iterdir() if NIGHTLY.fullmatch(p.name) and p.is_file())
    old = backups[: max(len(backups) - keep, 0)]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def lock_ledger(ledger: Path) -> IO[str]:
    """The ledger's lock, as `kiosk run` takes it (kiosk/daemon/app.py): AlreadyRunning if held."""
    path = Path(f"{ledger}.lock")
    try:
        handle = open(path, "a+")  # noqa: SIM115 (held until the restore is done)
    except OSError as exc:
        raise CannotCreate(
            f"cannot open the ledger's lock file {path}: {exc.strerror or exc} "
            "(run kiosk restore as root, or check `ledger.path` in the config)"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise AlreadyRunning(
            f"the daemon is running (it holds the ledger {ledger}); stop it first "
            "(`systemctl stop kiosk-ui kiosk`), then run kiosk restore again. Nothing was changed"
        ) from None
    return handle


def _owner(ledger: Path) -> tuple[int, int]:
    """The uid and gid the daemon's files have: the ledger's, else its folder's."""
    info = (ledger if ledger.exists() else ledger.parent).stat()
    return info.st_uid, info.st_gid


def cmd_restore(args: argparse.Namespace, config_path: str) -> int:
    from kiosk.clock import SystemClock
    from kiosk.config.loader import load_config
    from kiosk.ledger.restore import restore

    ledger = Path(load_config(config_path).ledger.path)
    backup = Path(args.file).absolute()
    if not ledger.parent.is_dir():
        raise CannotCreate(
            f"the ledger's folder {ledger.parent} does not exist (check `ledger.path`)"
        )
    lock = lock_ledger(ledger)
    try:
        uid, gid = _owner(ledger)
        done = restore(backup, ledger, SystemClock().now(), "technician:local")
        if os.geteuid() == 0:  # root restores for the daemon's user, who must open it
            for suffix in ("", ".lock", *COMPANIONS):
                with contextlib.suppress(FileNotFoundError):
                    os.chown(f"{ledger}{suffix}", uid, gid)
    finally:
        lock.close()
    print(f"restored {ledger} from {backup} (audit chain verified, {done.audit_rows} rows)")
    if done.kept is not None:
        print(f"the previous ledger is kept as {done.kept}")
    print("start the daemon (`systemctl start kiosk`) and reconcile: docs/operations.md")
    return EXIT_OK


def backup(
    args: argparse.Namespace, run_backup: Callable[[argparse.Namespace], int], config_path: str
) -> int:
    """`kiosk backup DEST [--prune]`: old nightly copies go only once the new one is written."""
    done = run_backup(args)
    if done == EXIT_OK and args.prune:
        from kiosk.config.loader import load_config

        keep = load_config(config_path).backup.keep
        removed = prune(Path(args.dest).absolute().parent, keep)
        if removed:
            print(f"removed {len(removed)} older backup(s), kept the newest {keep}")
    return done
