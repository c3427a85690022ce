"""Connecting to the local API socket: wait one's turn in the listen queue, up to a deadline.

When the daemon's listen queue is full (a local process flooding it with
connections), a non-blocking connect to a Unix socket fails at once with
EAGAIN, and retrying it with back-off still loses to the flood about half the
time. A BLOCKING connect instead sleeps in the kernel on the listening
socket's wait queue and is woken as soon as the daemon accepts and makes
room: it keeps its place. SO_SNDTIMEO bounds that wait (Linux unix(7): a
blocking connect gives up with EAGAIN when the send timeout expires).
"""

from __future__ import annotations

import socket
import struct

#: How long a caller waits for room in a full listen queue (s).
CONNECT_WAIT_S = 5.0


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))


def connect_unix(path: str, wait_s: float = CONNECT_WAIT_S) -> socket.socket:
    """A socket connected to `path`, in blocking mode with no send timeout left on it.

    OSError as connect(2) gives it: FileNotFoundError (no socket file),
    ConnectionRefusedError (nobody listens: a file left by a crash),
    PermissionError, or BlockingIOError (EAGAIN: still no room after `wait_s`).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(wait_s))
        sock.connect(path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(0))
    except BaseException:
        sock.close()
        raise
    return sock
