"""A command run with its stdout a pipe whose reading end is already closed (`cmd | head -0`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

#: What a command exits with when its stdout closed under it (128 + SIGPIPE, as a shell
#: reports a tool that SIGPIPE ended); docs/cli.md, "A closed stdout".
EXIT_CLOSED_STDOUT = 141
TIMEOUT_S = 60.0  # generous: other test runs share the machine


def run_with_closed_stdout(
    argv: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`argv` writing into a pipe nobody reads any more; stderr is captured."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_S,
            env=dict(env) if env is not None else None,
            check=False,
        )
    finally:
        os.close(write)
