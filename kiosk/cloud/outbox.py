"""Sending the outbox: strictly in seq order, a bounded window in flight, rows deleted on PUBACK.

The outbox table is the truth; paho's memory is a cache. Each connection
starts again from the lowest seq still in the table, so whatever was in
flight when a connection (or the whole process) died goes up again: the
cloud sees a duplicate, never a gap. Within a connection, seq n+1 is handed
to paho only after n, and paho keeps that order on the wire.

Rows are deleted only once the broker has acknowledged them, a batch at a
time (`flush_at` acks or `flush_after_s`, whichever comes first) so one fsync
covers many events. An acknowledged row not yet deleted when the process
dies is sent again: a duplicate, which the contract allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from kiosk.cloud.payloads import event_payload, outbox_level
from kiosk.ledger.db import Ledger
from kiosk.ledger.records import OutboxEvent

log = logging.getLogger(__name__)

#: publish(payload) -> (mid, handed over); False when the client has no connection.
Publish = Callable[[bytes], tuple[int, bool]]


class OutboxPump:
    def __init__(
        self,
        ledger: Ledger,
        window: int = 200,
        flush_at: int = 500,
        flush_after_s: float = 0.05,
        read_ahead: int = 500,
    ) -> None:
        if window < 1:
            raise ValueError("the in-flight window holds at least one message")
        self.ledger = ledger
        self.window = window
        self.flush_at = flush_at
        self.flush_after_s = flush_after_s
        self.read_ahead = max(read_ahead, window)
        self.sent = 0  # messages handed to paho (duplicates included)
        self.acked = 0  # PUBACKs for outbox events
        self._publish: Publish | None = None
        self._gen = 0
        self._inflight: dict[tuple[int, int], int] = {}  # (connection, mid) -> seq
        self._open = 0  # entries of the current connection in _inflight
        self._after = 0  # highest seq handed to paho on this connection
        self._buffer: deque[OutboxEvent] = deque()
        self._acked: list[int] = []
        self._flush_handle: asyncio.TimerHandle | None = None

    @property
    def in_flight(self) -> int:
        return self._open

    def start(self, publish: Publish) -> int:
        """A new connection: from the lowest seq in the table again. Returns its generation."""
        self.flush()
        self._gen += 1
        # Acks of the connection just lost may still arrive; older ones will not.
        self._inflight = {k: v for k, v in self._inflight.items() if k[0] == self._gen - 1}
        self._publish = publish
        self._open = 0
        self._after = 0
        self._buffer.clear()
        self.pump()
        return self._gen

    def stop(self) -> None:
        """The connection is gone: hand nothing more to its client."""
        self._publish = None
        self._open = 0

    def pump(self) -> None:
        """Fill the window from the table, in seq order."""
        while self._publish is not None and self._open < self.window:
            if not self._buffer:
                self._buffer.extend(self.ledger.outbox.pending(self.read_ahead, self._after))
                if not self._buffer:
                    return
            event = self._buffer.popleft()
            mid, handed = self._publish(event_payload(event))
            self._inflight[(self._gen, mid)] = event.seq
            self._open += 1
            self._after = event.seq
            self.sent += 1
            if not handed:  # the connection is going; the next one starts over
                self.stop()
                return

    def on_puback(self, gen: int, mid: int, refill: bool = True) -> bool:
        """The broker has this message. True if it was one of ours.

        `refill=False` leaves the window for the caller to refill once after a
        batch of acknowledgements (one `pump()` instead of one per PUBACK).
        """
        seq = self._inflight.pop((gen, mid), None)
        if seq is None:
            return False
        self.acked += 1
        if gen == self._gen and self._publish is not None:
            self._open -= 1
        self._acked.append(seq)
        if refill:
            self.pump()
        if len(self._acked) >= self.flush_at:
            self.flush()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.flush_after_s, self.flush)
        return True

    def flush(self) -> None:
        """Delete the acknowledged rows (one transaction)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._acked:
            return
        seqs, self._acked = self._acked, []
        try:
            self.ledger.outbox.ack(seqs)
        except Exception:
            # Kept, so they go up again later: a duplicate, never a loss.
            log.exception("could not delete %d acknowledged events; they will be resent", len(seqs))


class OutboxAlarm:
    """`mqtt.outbox_cap` is an alarm, not a drop policy: logged at 80%, again at the cap."""

    def __init__(self, cap: int, full_repeat_s: float = 600.0) -> None:
        self.cap = cap
        self.full_repeat_s = full_repeat_s
        self.depth = 0
        self.level = "ok"
        self._full_logged = 0.0

    def check(self, depth: int, now: float, force: bool = False) -> bool:
        """Take a new depth; log on a change of level (and every full_repeat_s while full)."""
        self.depth = depth
        level = outbox_level(depth, self.cap)
        changed = level != self.level
        if changed or force:
            self._full_logged = now
            if level == "near_cap":
                log.warning(
                    "outbox near its cap: %d of %d events wait for the cloud (outbox.near_cap)",
                    depth,
                    self.cap,
                )
            elif level == "full":
                log.error(
                    "outbox FULL: %d events wait, cap %d; nothing is dropped, but the cloud "
                    "link must be restored (outbox.full)",
                    depth,
                    self.cap,
                )
            elif changed:
                log.info("outbox back under its cap: %d events", depth)
        elif level == "full" and now - self._full_logged >= self.full_repeat_s:
            self._full_logged = now
            log.error("outbox still FULL: %d events wait (outbox.full)", depth)
        self.level = level
        return changed
