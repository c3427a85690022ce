"""The `kiosk` command line (also `python -m kiosk`). Exit codes: 0 done, 1 refused, 2 bad usage."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from kiosk import __version__
from kiosk.domain.errors import ConfigError, KioskError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_DAEMON = 0, 1, 2, 3
DEFAULT_CONFIG = "/etc/kiosk/kiosk.toml"


def _config_path(args: argparse.Namespace) -> str:
    return getattr(args, "config", None) or os.environ.get("KIOSK_CONFIG") or DEFAULT_CONFIG


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk import demo

    return demo.run(args.state_dir, args.headless)


def cmd_config_check(args: argparse.Namespace) -> int:
    from kiosk.config.loader import check_config

    for warning in check_config(args.file, strict=args.strict):
        print(f"warning: {args.file}: {warning}", file=sys.stderr)
    print(f"{args.file}: ok")
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from kiosk.ledger.audit import verify

    path = args.db
    if path is None:
        from kiosk.config.loader import load_config

        path = str(load_config(_config_path(args)).ledger.path)
    if not Path(path).is_file():
        print(f"error: no ledger file at {path}", file=sys.stderr)
        return EXIT_REFUSED
    # as_uri() percent-encodes the path: a '#', '?' or '%' in it stays part of the name.
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        print(f"error: {path}: cannot open ({exc})", file=sys.stderr)
        return EXIT_REFUSED
    try:
        result = verify(conn)
    except sqlite3.DatabaseError as exc:
        print(f"error: {path}: not a readable ledger ({exc})", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        conn.close()
    if result.ok:
        print(f"{path}: audit chain verified, {result.rows} rows")
        return EXIT_OK
    print(
        f"{path}: audit chain BROKEN after {result.rows} good rows: {result.problem}",
        file=sys.stderr,
    )
    return EXIT_REFUSED


def build_parser() -> argparse.ArgumentParser:
    config_opt = argparse.ArgumentParser(add_help=False)
    config_opt.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"config file (else $KIOSK_CONFIG, else {DEFAULT_CONFIG})",
    )
    parser = argparse.ArgumentParser(
        prog="kiosk",
        parents=[config_opt],
        description="locker-kiosk: the controller of one parcel-locker bank.",
    )
    parser.add_argument("--version", action="version", version=f"locker-kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[config_opt],
        help="the whole bank on a simulated board, with sample parcels",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="walk a delivery and a pickup by itself, then exit 0",
    )
    demo.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the ledger and demo-codes.txt go (default: a new temp dir)",
    )
    demo.set_defaults(func=cmd_demo)

    config = sub.add_parser("config", parents=[config_opt], help="config file tools")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser("check", parents=[config_opt], help="validate a config file")
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--strict",
        action="store_true",
        help="missing key and certificate files are errors, not warnings",
    )
    check.set_defaults(func=cmd_config_check)

    audit = sub.add_parser("audit", parents=[config_opt], help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify", parents=[config_opt], help="exit non-zero on any edited, removed or reordered row"
    )
    verify.add_argument("--db", metavar="FILE", help="a ledger file (needs no config)")
    verify.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except KioskError as exc:
        print(f"error: {exc.message} [{exc.code}]", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
