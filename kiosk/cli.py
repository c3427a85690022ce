"""The `kiosk` command line (also `python -m kiosk`).

Exit codes: 0 done, 1 refused, 2 bad usage, 3 daemon not reachable; `kiosk
run` that cannot start: 78 config, 69 device not there, 73 cannot create a
file; 70 an unexpected error (a bug), whose trace goes to the journal or a file.
`kiosk config check` with any error: 78; `kiosk restore` beside a running daemon: 73;
`kiosk ui --web` on a port taken: 69; a stdout closed under it (`| head`): 141.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from kiosk import (
    __version__,
    cli_backup,
    cli_config,
    cli_guard,
    cli_hardware,
    cli_ops,
    cli_simulate,
    cli_tech,
)
from kiosk.domain.errors import (
    EX_SOFTWARE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    ConfigError,
    KioskError,
    StartConfigError,
)

DEFAULT_CONFIG = "/etc/kiosk/kiosk.toml"


def _config_path(args: argparse.Namespace) -> str:
    return getattr(args, "config", None) or os.environ.get("KIOSK_CONFIG") or DEFAULT_CONFIG


def _keypad(socket: str, codes: list[tuple[str, str, str]], pin: str) -> None:
    from kiosk.ui.app import KioskApp

    KioskApp(socket, demo_codes=codes, demo_pin=pin).run()


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk import demo
    from kiosk.ui.web import serve

    web = partial(cli_guard.serve_web, serve) if args.web else None
    return cli_guard.demo_modes_clash(args) or demo.run(
        args.state_dir, args.headless, screen=_keypad, web=web
    )


def cmd_ui(args: argparse.Namespace) -> int:
    from kiosk.config.loader import load_config

    config = _config_path(args)
    socket = str(load_config(config).api.socket)  # fail fast on a bad config, before any screen
    extra = ["--lang", args.lang, "--idle-s", str(args.idle_s)]
    if args.web:
        from kiosk.ui.web import exposure_warning, serve

        warning = exposure_warning(args.host, args.port)
        if warning:
            print(warning, file=sys.stderr, flush=True)
        return cli_guard.serve_web(serve, str(Path(config).absolute()), args.port, args.host, extra)
    if not _has_screen():
        print(
            "error: kiosk ui needs a terminal (stdin and stdout a tty): run it on the "
            "kiosk's console, in a terminal or tmux, or serve it to a browser with --web",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from kiosk.ui.app import KioskApp

    KioskApp(socket, language=args.lang, idle_s=args.idle_s).run()
    return EXIT_OK


def _has_screen() -> bool:
    """A terminal to draw on, or a Textual driver that brings its own (textual-serve's).

    Without one, Textual reads end-of-file from stdin in a tight loop for ever.
    """
    if os.environ.get("TEXTUAL_DRIVER"):
        return True
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_doctor(args: argparse.Namespace) -> int:
    import logging

    from kiosk.doctor.run import checks, report

    logging.disable(logging.WARNING)  # a silent board is a row of the table, not a log line
    return report(checks(_config_path(args)), args.json)


def cmd_diag(args: argparse.Namespace) -> int:
    from kiosk.diag import main as diag

    return diag(_config_path(args), Path(args.out))


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


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from kiosk.config.loader import load_config

    return load_config(_config_path(args))


def _socket(args: argparse.Namespace) -> str:
    from kiosk.config.loader import load_config

    return str(load_config(_config_path(args)).api.socket)


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon. A start that fails ends in one line (its held log lines are dropped)."""
    import asyncio

    from kiosk.config.loader import load_config
    from kiosk.daemon.app import Daemon
    from kiosk.daemon.runlog import START_HOLD_S, formatted, start_logging

    held = start_logging(args.verbose)

    async def serve() -> int:
        asyncio.get_running_loop().call_later(START_HOLD_S, held.let_go)
        return await Daemon(load_config(_config_path(args))).run(ready=held.let_go)

    try:
        return asyncio.run(serve())
    except ConfigError as exc:  # the config file, a key file, a bus the backend refuses
        held.discard()
        raise StartConfigError(f"cannot start: {exc.message}") from exc
    except KioskError:
        held.discard()
        raise
    except Exception as exc:  # a bug: the held lines go with its trace (kiosk.crash)
        lines = formatted(held.discard())
        if lines:
            exc.add_note("\n".join(["kiosk run's log before it failed:", *lines]))
        raise


def _daemon_command(op: cli_ops.DaemonOp) -> Callable[[argparse.Namespace], int]:
    """A command that talks to the running daemon: `op` gets the connected client."""
    return cli_ops.with_daemon(_socket)(op)


def build_parser() -> argparse.ArgumentParser:
    config_opt = argparse.ArgumentParser(add_help=False)
    config_opt.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"config file (else $KIOSK_CONFIG, else {DEFAULT_CONFIG})",
    )
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print JSON instead of a table")
    reason_opt = argparse.ArgumentParser(add_help=False)
    reason_opt.add_argument(
        "--reason", metavar="TEXT", required=True, help="why (goes into the audit log)"
    )
    parser = argparse.ArgumentParser(
        prog="kiosk",
        parents=[config_opt],
        description="locker-kiosk: the controller of one parcel-locker bank.",
    )
    parser.add_argument("--version", action="version", version=f"locker-kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help_, parents=(), func=None, owner=sub):  # type: ignore[no-untyped-def]
        made = owner.add_parser(name, parents=[config_opt, *parents], help=help_)
        if func is not None:
            made.set_defaults(func=func)
        return made

    demo = command(
        "demo", "the whole bank on a simulated board, with sample parcels", func=cmd_demo
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="walk a delivery and a pickup by itself, then exit 0",
    )
    demo.add_argument(
        "--web",
        action="store_true",
        help="serve the keypad screen to a browser (prints the URL) instead of this terminal",
    )
    demo.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the ledger and demo-codes.txt go (default: a new temp dir)",
    )

    ui = command("ui", "the keypad screen (in this terminal, or --web)", func=cmd_ui)
    ui.add_argument("--web", action="store_true", help="serve it to a browser (textual-serve)")
    ui.add_argument("--host", default="localhost", help="--web: address (default localhost)")
    ui.add_argument("--port", type=cli_guard.port, default=8000, help="--web: port (default 8000)")
    ui.add_argument(
        "--lang", choices=["en", "de"], default="en", metavar="en|de", help="starting language"
    )
    ui.add_argument(
        "--idle-s",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="back to the home screen after this long untouched (default 60)",
    )

    run = command("run", "the daemon (under systemd: Type=notify)", func=cmd_run)
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    config = command("config", "config file tools")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = command(
        "check",
        "list every error of a config file",
        func=lambda args: cli_config.config_check(args, _config_path(args)),
        owner=config_sub,
    )
    check.add_argument("file", metavar="FILE", nargs="?", help="default: the configured file")
    check.add_argument(
        "--strict",
        action="store_true",
        help="missing key and certificate files are errors, not warnings",
    )

    command(
        "doctor", "is this bank healthy? checks, each failure with its fix", [json_opt], cmd_doctor
    )
    diag = command("diag", "write a support bundle (secrets left out)", func=cmd_diag)
    diag.add_argument("--out", metavar="FILE.tar.gz", required=True, help="the new bundle file")
    code = command(
        "code",
        "submit a code exactly as the keypad would",
        [json_opt],
        _daemon_command(cli_ops.code),
    )
    code.add_argument("code", metavar="CODE")
    command("status", "lockers and what they hold now", [json_opt], _daemon_command(cli_ops.status))
    command(
        "doors", "every door: open, shut or unknown", [json_opt], _daemon_command(cli_ops.doors)
    )
    parcels = command(
        "parcels", "every parcel of the last 30 days", [json_opt], _daemon_command(cli_ops.parcels)
    )
    parcels_sub = parcels.add_subparsers(dest="parcels_command", metavar="ACTION")
    announce = command(
        "announce",
        "register an expected parcel and draw its codes (no cloud)",
        [json_opt],
        _daemon_command(cli_ops.announce),
        owner=parcels_sub,
    )
    announce.add_argument("--size", required=True, choices=["S", "M", "L"], metavar="S|M|L")
    announce.add_argument("--parcel-id", metavar="ID", help="default: a new local id")

    opener = command(
        "open",
        "open a door (technician, audited)",
        [reason_opt],
        _daemon_command(cli_ops.open_door),
    )
    opener.add_argument("label", metavar="LABEL")
    service = command(
        "service",
        "take a locker out of service or back in",
        [reason_opt],
        _daemon_command(cli_ops.service),
    )
    service.add_argument("label", metavar="LABEL")
    service.add_argument("state", choices=["out", "in"], metavar="out|in")
    checked = command(
        "check",
        "record what a flagged locker holds, and clear the flag",
        [reason_opt],
        _daemon_command(cli_ops.check),
    )
    checked.add_argument("label", metavar="LABEL")
    checked.add_argument("found", choices=["parcel", "empty"], metavar="parcel|empty")

    audit = command("audit", "the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    tail = command(
        "tail",
        "the newest audit rows",
        [json_opt],
        _daemon_command(cli_ops.audit_tail),
        owner=audit_sub,
    )
    tail.add_argument("-n", type=int, default=20, help="how many rows (default 20)")
    verify = command(
        "verify",
        "exit non-zero on any edited, removed or reordered row",
        func=cmd_audit_verify,
        owner=audit_sub,
    )
    verify.add_argument("--db", metavar="FILE", help="a ledger file (needs no config)")

    command(
        "selftest", "sweep every door sensor, with progress", func=_daemon_command(cli_ops.selftest)
    )
    backup = command("backup", "online backup of the ledger", func=None)
    backup.set_defaults(
        func=lambda args: cli_backup.backup(
            args, _daemon_command(cli_ops.backup), _config_path(args)
        )
    )
    backup.add_argument("dest", metavar="DEST")
    backup.add_argument("--prune", action="store_true", help="then keep the newest backup.keep")
    restore = command("restore", "put a backup in the ledger's place (daemon stopped)")
    restore.set_defaults(func=lambda args: cli_backup.cmd_restore(args, _config_path(args)))
    restore.add_argument("file", metavar="FILE")
    lockout = command("lockout", "the code-entry lockout")
    lockout_sub = lockout.add_subparsers(dest="lockout_command", metavar="ACTION", required=True)
    command(
        "reset",
        "reopen code and PIN entry",
        func=_daemon_command(cli_ops.lockout_reset),
        owner=lockout_sub,
    )
    tech = command("tech", "technicians")
    tech_sub = tech.add_subparsers(dest="tech_command", metavar="ACTION", required=True)
    set_pin = command(
        "set-pin",
        "set a technician's PIN (asks for it)",
        func=_daemon_command(cli_tech.set_pin),
        owner=tech_sub,
    )
    set_pin.add_argument("technician_id", metavar="ID")
    set_pin.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin")
    command(
        "list", "technicians (audited)", [json_opt], _daemon_command(cli_tech.tech_list), tech_sub
    )
    tech_remove = command(
        "remove",
        "remove a technician (audited)",
        func=_daemon_command(cli_tech.tech_remove),
        owner=tech_sub,
    )
    tech_remove.add_argument("name", metavar="NAME")

    cli_hardware.add_commands(sub, command, json_opt, _load)

    # --- kiosk cloud: moved to the cloud tool (`kiosk-cloud`, cloudtool/) ---
    def _moved(args: argparse.Namespace) -> int:
        print(
            "error: `kiosk cloud` is now `kiosk-cloud`, the cloud's tool, which a kiosk does not "
            "have (pip install ./cloudtool where the cloud runs); same actions and options",
            file=sys.stderr,
        )
        return EXIT_USAGE

    moved = command("cloud", "moved: the cloud's side is the `kiosk-cloud` command", func=_moved)
    # Whatever follows (its old options included) is taken as is, to say where it went.
    moved.parse_known_args = lambda args=None, namespace=None: (  # type: ignore[method-assign]
        argparse.Namespace(func=_moved),
        [],
    )
    # --- end kiosk cloud ---

    cli_simulate.add_commands(sub, command)
    return parser


@cli_guard.quiet_on_closed_stdout
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except (ConfigError, StartConfigError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KioskError as exc:
        print(f"error: {exc.message} [{exc.code}]", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # the reader of stdout went away: ended quietly (cli_guard)
    except Exception as exc:  # a bug: one line here, the trace where it can be read
        from kiosk.crash import report_crash

        print(report_crash(exc), file=sys.stderr)
        return EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
