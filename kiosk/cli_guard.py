"""Operator mistakes the `kiosk` command meets beyond argparse: one line each, never a trace.

A `--port` outside 1-65535, `kiosk demo --web --headless`, a web port that
cannot be listened on (69), and a stdout closed under the command (141, quietly).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from collections.abc import Callable, Sequence

from kiosk.domain.errors import EX_UNAVAILABLE, EXIT_CLOSED_STDOUT, EXIT_USAGE

#: Why a listening socket cannot be had, as the operator can fix it (`cannot_listen`).
_LISTEN_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def port(text: str) -> int:
    """`--port`: a TCP port, 1 to 65535 (argparse names the option in its error, exit 2)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 1 to 65535, got {text!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 1 to 65535, got {number}")
    return number


def demo_modes_clash(args: argparse.Namespace) -> int | None:
    """EXIT_USAGE, said in one line, for `kiosk demo --web --headless`; None: go on."""
    if not (args.web and args.headless):
        return None
    print(
        "error: kiosk demo: --web and --headless do not go together (--headless walks the "
        "demo by itself with no screen); leave out one of them",
        file=sys.stderr,
    )
    return EXIT_USAGE


def serve_web(
    serve: Callable[[str, str, int, Sequence[str]], int],
    config: str,
    port: int,
    host: str = "localhost",
    extra: Sequence[str] = (),
) -> int:
    """`serve` (kiosk.ui.web's); an address it cannot listen on is one line and 69."""
    try:
        return serve(config, host, port, extra)
    except OSError as exc:
        line = cannot_listen(host, port, exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return EX_UNAVAILABLE


def cannot_listen(host: str, port: int, exc: OSError) -> str | None:
    """The line for an address `--host`/`--port` name that cannot be listened on, or None."""
    if isinstance(exc, socket.gaierror):
        return f"error: --host {host}: {exc.strerror}; choose another with --host"
    if exc.errno not in _LISTEN_ERRORS:
        return None
    reason = os.strerror(exc.errno).lower()
    if exc.errno == errno.EADDRINUSE:
        return f"error: port {port} on {host} is in use: {reason}; choose another with --port"
    if exc.errno == errno.EACCES:
        return (
            f"error: port {port} on {host}: {reason} (below 1024 needs root); "
            "choose another with --port"
        )
    return f"error: {host} is not an address of this machine ({reason}); choose another with --host"


def quiet_on_closed_stdout(main: Callable[[Sequence[str] | None], int]) -> Callable[..., int]:
    """`main`, ended quietly with 141 when its stdout closes under it (`kiosk status | head`)."""

    def guarded(argv: Sequence[str] | None = None) -> int:
        try:
            code = main(argv)
            sys.stdout.flush()  # what is still buffered may meet the closed pipe too
        except BrokenPipeError:
            # Python's "Note on SIGPIPE": stdout onto /dev/null, so that the interpreter's
            # own flush at exit finds nothing to write to the closed pipe.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_CLOSED_STDOUT
        return code

    return guarded
