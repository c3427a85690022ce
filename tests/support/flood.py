"""A bounded flood of the local API socket from one process: connect, close, again.

    python flood.py SOCKET STOP_FILE MAX_SECONDS

Non-blocking connects, each closed at once, as fast as one process can make
them (the attack: about 16,000 a second, with enough of them to fill the
daemon's listen queue). Prints `started` after its first accepted connect,
and `made N refused M` when it ends: when STOP_FILE appears, after
MAX_SECONDS, or when its parent is gone, whichever comes first. Only the Unix
socket is touched.
"""

from __future__ import annotations

import os
import socket
import sys
import time

BURST = 200  # connects between two looks at the stop file and the clock


def main(path: str, stop: str, max_s: float) -> int:
    deadline = time.monotonic() + max_s
    parent = os.getppid()
    made = refused = 0
    started = False
    while time.monotonic() < deadline and not os.path.exists(stop) and os.getppid() == parent:
        for _ in range(BURST):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(path)
                made += 1
            except OSError:  # EAGAIN: the listen queue is full (or no daemon yet)
                refused += 1
            finally:
                sock.close()
        if made and not started:
            print("started", flush=True)
            started = True
    print(f"made {made} refused {refused}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
