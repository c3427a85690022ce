"""Fork servers for the crash tests: a child per kill point costs a fork, not a Python start-up.

A child script whose `main(argv)` runs one scenario calls `serve(main)` when
started with `--serve`: it has imported everything by then, and forks once per
job line it reads on stdin. `ForkPool` starts a few such servers and hands each
job to an idle one. A forked child is a fresh process like any other (its own
event loop, ledger connection and pins); SIGKILL ends it alone, and its server
reports how it ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.child_run import ChildRun

SERVE = "--serve"


class ForkPool:
    """`size` fork servers of `script` (`script --serve`); `run` gives a job to an idle one."""

    def __init__(self, script: Path, size: int, timeout_s: float) -> None:
        self.script = script
        self.size = size
        self.timeout_s = timeout_s
        self._idle: asyncio.Queue[asyncio.subprocess.Process] = asyncio.Queue()
        self._servers: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> ForkPool:
        for _ in range(self.size):
            server = await asyncio.create_subprocess_exec(
                sys.executable,
                str(self.script),
                SERVE,
                cwd=Path(__file__).resolve().parents[2],
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self._servers.append(server)
            self._idle.put_nowait(server)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self._servers:
            if server.stdin is not None:
                server.stdin.close()  # the server ends after the job it is running
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait(), 5.0)
            except TimeoutError:
                server.kill()
                await server.wait()

    async def run(self, argv: list[str], kill_at: int, out: Path, err: Path) -> ChildRun:
        """Run `main(argv)` in a fork; its stdout and stderr go to the files `out` and `err`."""
        server = await self._idle.get()
        try:
            assert server.stdin is not None and server.stdout is not None
            job = {"argv": argv, "out": str(out), "err": str(err), "timeout_s": self.timeout_s}
            server.stdin.write(json.dumps(job).encode() + b"\n")
            await server.stdin.drain()
            line = await asyncio.wait_for(server.stdout.readline(), self.timeout_s + 5)
        finally:
            self._idle.put_nowait(server)
        if not line.strip().lstrip(b"-").isdigit():
            raise RuntimeError(f"fork server answered {line!r} for {argv}")
        lines = out.read_text().splitlines() if out.exists() else []
        return ChildRun(kill_at, int(line), lines, err.read_text() if err.exists() else "")


def serve(main: Callable[[list[str]], int]) -> int:
    """One job per stdin line ({"argv", "out", "err", "timeout_s"}); fork, wait, print the status.

    The status is the child's exit code, or minus the signal that ended it
    (-9: SIGKILL), as `subprocess` reports it; 124 if it ran past its timeout.
    """
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(main, job)
        print(_wait(pid, job["timeout_s"]), flush=True)
    return 0


def _child(main: Callable[[list[str]], int], job: dict[str, Any]) -> None:
    """In the fork: stdout and stderr to the job's files, run it, never return."""
    code = 70
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, job["out"]), (2, job["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        code = main(job["argv"])
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout_s: float) -> int:
    pidfd = os.pidfd_open(pid)  # readable once the child has ended
    try:
        ended = select.select([pidfd], [], [], timeout_s)[0]
    finally:
        os.close(pidfd)
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return 124
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
