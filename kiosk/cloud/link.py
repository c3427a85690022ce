"""The daemon's MQTT link: paho on the asyncio loop, with the ledger, service and every decision.

Each connection's socket is read and written by the loop itself
(`kiosk.cloud.onloop`, paho's external-loop API; only the blocking connect
and TLS handshake run in an executor), so paho's callbacks run on the loop
and the ledger, the service and every decision stay single-threaded. The
callbacks only schedule work (`call_soon`, or a command onto the worker's
queue): nothing re-enters paho from inside its own read. Each connection
gets a fresh paho client that never reconnects by itself: the loop owns
the back-off (exponential, with jitter) and starts the outbox again from
the table on every connection, so paho's memory is never trusted across a
drop.

The link speaks MQTT 5: a persistent session (clean start off, never expiring) and a
Maximum Packet Size (`MAX_PACKET_BYTES`): the broker drops a command too big to be one.

On each connection: subscribe to `commands` (QoS 1, persistent session, so
commands sent while the bank was offline arrive when it is back, and are
acknowledged only after they were handled), publish the birth (`status`,
`online: true`, retained), the retained `state`, then the outbox. The last
will is `status` with `online: false`, retained, QoS 1. A clean stop
publishes the same itself and waits for its PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho

from kiosk.clock import Clock
from kiosk.cloud.commands import CommandHandler
from kiosk.cloud.mqtt import Endpoint, connect_properties, new_client
from kiosk.cloud.onloop import PahoOnLoop
from kiosk.cloud.outbox import OutboxAlarm, OutboxPump
from kiosk.cloud.payloads import Topics, state_payload, state_snapshot, status_payload
from kiosk.cloud.tokens import MAX_TOKEN_BYTES
from kiosk.config.model import MqttConfig, SiteConfig
from kiosk.ledger.db import Ledger
from kiosk.tasks import cancel_all

log = logging.getLogger(__name__)

#: The largest MQTT packet the kiosk accepts: the longest command token plus its topic and header.
MAX_PACKET_BYTES = MAX_TOKEN_BYTES + 1024


@dataclass(frozen=True)
class LinkTiming:
    """Seconds. Tests shorten them; the defaults suit a bank on a mobile network."""

    backoff_first_s: float = 1.0
    backoff_max_s: float = 120.0
    connack_timeout_s: float = 15.0
    tick_s: float = 0.1  # how often new outbox rows and state changes are looked for
    state_check_s: float = 0.5
    refresh_s: float = 300.0  # state and status are republished at least this often
    outbox_check_s: float = 1.0
    full_repeat_s: float = 600.0
    stop_wait_s: float = 2.0


def backoff_s(attempt: int, timing: LinkTiming, rnd: Callable[[], float] = random.random) -> float:
    """Exponential back-off with jitter: uniform in [d/2, d], d = first * 2^(attempt-1) <= max."""
    ceiling = min(timing.backoff_max_s, timing.backoff_first_s * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + rnd() * ceiling / 2


@dataclass(eq=False)
class _Session:
    gen: int
    client: paho.Client
    ended: asyncio.Future[str]
    driver: PahoOnLoop
    pump_gen: int = -1  # the outbox pump's generation for this connection
    connected: bool = False
    subscribed: bool = False
    waiting: dict[int, asyncio.Future[None]] = field(default_factory=dict)


class CloudLink:
    def __init__(
        self,
        mqtt: MqttConfig,
        site: SiteConfig,
        ledger: Ledger,
        handler: CommandHandler,
        clock: Clock,
        version: str,
        timing: LinkTiming | None = None,
        window: int = 200,
        wire_inflight: int = 20,
        presence: Callable[[], Mapping[str, bool | None]] | None = None,
    ) -> None:
        self.mqtt = mqtt
        self.presence = presence  # each locker's presence sensor, for the state snapshot
        self.site = site
        self.ledger = ledger
        self.handler = handler
        self.clock = clock
        self.version = version
        self.timing = timing or LinkTiming()
        self.topics = Topics(mqtt.prefix, site.id)
        self.endpoint = Endpoint(
            mqtt.host, mqtt.port, mqtt.ca_file, mqtt.cert_file, mqtt.key_file, mqtt.tls
        )
        self.pump = OutboxPump(ledger, window)
        self.window = window
        self.wire_inflight = wire_inflight
        self.outbox_depth = 0
        self.outbox_level = "ok"
        self.connections = 0
        self.last_contact: datetime | None = None  # the broker last answered (connect, PUBACK)
        self._context = self.endpoint.ssl_context()  # bad certificate files fail at start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: _Session | None = None
        self._gen = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._commands: asyncio.Queue[tuple[_Session, paho.MQTTMessage]] = asyncio.Queue()
        self._stopping = False
        self.down_since: float | None = None  # clock.monotonic() it went down; None while up
        self._outage_logged = False
        self.alarm = OutboxAlarm(mqtt.outbox_cap, self.timing.full_repeat_s)
        self._last_state: dict[str, Any] | None = None
        self._kicked = True
        self._acks: deque[tuple[_Session, int]] = deque()  # PUBACKs not yet taken
        self._acks_wake = False
        self._outbox_wake = False  # a pump is scheduled for rows just committed

    # --- what the daemon sees -------------------------------------------------

    @property
    def online(self) -> bool:
        s = self._session
        return s is not None and s.connected and not s.ended.done()

    @property
    def listening(self) -> bool:  # online, and the broker confirmed the command subscription
        return self.online and self._session is not None and self._session.subscribed

    def kick(self) -> None:
        """Something changed: look at the outbox and the state on the next tick."""
        self._kicked = True

    def wake(self) -> None:
        """Outbox rows have just committed: hand them to paho now, not at the next tick.

        The composition root gives this to `ledger.outbox.on_committed`, which
        calls it on the loop's thread after the COMMIT, never inside a
        transaction. The pump runs on the loop's next turn, once for however
        many commits came before it, and reads only what the table holds.
        """
        loop = self._loop
        if self._outbox_wake or loop is None or self._stopping or loop.is_closed():
            return
        self._outbox_wake = True
        loop.call_soon(self._pump_woken)

    def _pump_woken(self) -> None:
        self._outbox_wake = False
        self.pump.pump()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.down_since = self.clock.monotonic()
        self._check_outbox(force=True)
        self._tasks = [
            self._loop.create_task(self._connections(), name="cloud-connect"),
            self._loop.create_task(self._ticks(), name="cloud-tick"),
            self._loop.create_task(self._command_worker(), name="cloud-commands"),
        ]
        log.info(
            "cloud link to %s:%d (%s), topics %s/...",
            self.endpoint.host,
            self.endpoint.port,
            "TLS" if self._context else "no TLS",
            self.topics.of("")[:-1],
        )

    async def stop(self) -> None:
        """Say offline (retained) and wait for its PUBACK, then close; the outbox keeps the rest."""
        self._stopping = True
        s = self._session
        if s is not None and self.online:
            mid, ok = self._publish(s, self.topics.status, self._status(False), retain=True)
            if ok:
                fut = s.waiting.setdefault(mid, asyncio.get_running_loop().create_future())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(fut, self.timing.stop_wait_s)
        await cancel_all(self._tasks)
        self._tasks = []
        if s is not None:
            s.driver.detach()
        self.pump.stop()
        self.pump.flush()
        self._session = None

    # --- connections ----------------------------------------------------------

    async def _connections(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self._stopping:
            session = self._new_session()
            where = f"{self.endpoint.host}:{self.endpoint.port}"
            connecting = loop.run_in_executor(
                None,
                functools.partial(
                    session.client.connect,
                    self.endpoint.host,
                    self.endpoint.port,
                    self.mqtt.keepalive_s,
                    clean_start=False,
                    properties=connect_properties(MAX_PACKET_BYTES),
                ),
            )
            try:
                rc = await connecting
                if rc != paho.MQTT_ERR_SUCCESS:  # connected, then the CONNECT write failed
                    raise OSError(f"the connection broke at once ({paho.error_string(rc)})")
            except (OSError, ValueError) as exc:
                _close_socket(session.client)
                self._went_down(f"cannot connect to {where}: {exc}")
                attempt += 1
                await asyncio.sleep(backoff_s(attempt, self.timing))
                continue
            except asyncio.CancelledError:
                # stop() while connecting: the executor's connect() runs on; close what it opens.
                connecting.add_done_callback(functools.partial(_close_later, session.client))
                raise
            self._session = session
            try:
                session.driver.attach()
                done, _ = await asyncio.wait({session.ended}, timeout=self.timing.connack_timeout_s)
                if not done and not session.connected:
                    self._end(session, "no CONNACK in time")
                reason = await session.ended
            except OSError as exc:  # closed between connect() and attach()
                reason = f"the connection broke at once: {exc}"
                self._end(session, reason)
            finally:
                self.pump.stop()
                session.driver.detach()
            if session.connected:
                attempt = 0
            self._went_down(reason)
            attempt += 1
            await asyncio.sleep(backoff_s(attempt, self.timing))

    def _new_session(self) -> _Session:
        assert self._loop is not None
        loop = self._loop
        self._gen += 1
        client = new_client(
            f"kiosk-{self.site.id}",
            self.endpoint,
            self._context,
            manual_ack=True,
            mqtt5=True,
        )
        # On the wire: at most wire_inflight unacknowledged (paho's own limit, as raw paho's).
        # Handed over: up to `window` events queue in paho, in order, so paho sends the
        # next one the moment it reads the PUBACK that frees a slot.
        client.max_inflight_messages_set(self.wire_inflight)
        client.max_queued_messages_set(0)
        client.will_set(self.topics.status, self._status(False), qos=1, retain=True)
        ended: asyncio.Future[str] = loop.create_future()
        driver = PahoOnLoop(loop, client, on_lost=lambda why: self._end(session, why))
        session = _Session(self._gen, client, ended, driver)

        def soon(fn: Callable[..., None], *args: Any) -> None:
            # Thread-safe: a connection that breaks inside connect() calls on_disconnect
            # on the executor's thread. Every other callback runs on the loop.
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to tell
                loop.call_soon_threadsafe(fn, *args)

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if reason.is_failure:
                soon(self._end, session, f"broker refused the connection: {reason}")
            else:
                soon(self._connected, session)

        def on_disconnect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            soon(self._end, session, f"disconnected ({reason})")

        def on_publish(_c: Any, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
            # Take the PUBACKs of one read together, once paho is done reading. PUBACKs
            # are only ever read on the loop (PahoOnLoop): no thread-safe hand-over needed.
            self._acks.append((session, mid))
            if not self._acks_wake:
                self._acks_wake = True
                loop.call_soon(self._drain_acks)

        def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: Any, _props: Any) -> None:
            soon(self._suback, session, reasons)

        def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
            # Only ever read on the loop (PahoOnLoop): queued now, no thread-safe hand-over.
            self._commands.put_nowait((session, message))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        return session

    def _connected(self, s: _Session) -> None:
        if s is not self._session or s.ended.done():
            return
        s.connected = True
        self.connections += 1
        self.last_contact = self.clock.now()
        away = self.clock.monotonic() - (self.down_since or self.clock.monotonic())
        if self._outage_logged:
            log.info("cloud link back after %.0f s; %d events to send", away, self.outbox_depth)
        else:
            log.info("cloud link up; %d events to send", self.outbox_depth)
        self.down_since = None
        self._outage_logged = False
        s.client.subscribe(self.topics.commands, qos=1)
        self._publish(s, self.topics.status, self._status(True), retain=True)
        self._publish_state(s, force=True)
        s.pump_gen = self.pump.start(lambda payload: self._publish(s, self.topics.events, payload))

    def _end(self, s: _Session, reason: str) -> None:
        if not s.ended.done():
            s.ended.set_result(reason)
        if s is self._session:
            self.pump.stop()

    def _went_down(self, reason: str) -> None:
        if self._stopping:
            return
        if self.down_since is None:
            self.down_since = self.clock.monotonic()
        if not self._outage_logged:
            self._outage_logged = True
            log.warning("cloud link down: %s; the bank works on, events wait in the outbox", reason)
        else:
            log.debug("cloud link still down: %s", reason)

    def _drain_acks(self) -> None:
        self._acks_wake = False  # first: a PUBACK appended from now on wakes us again
        if self._acks:
            self.last_contact = self.clock.now()
        while self._acks:
            s, mid = self._acks.popleft()
            fut = s.waiting.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
            self.pump.on_puback(s.pump_gen, mid, refill=False)
        self.pump.pump()

    def _suback(self, s: _Session, reasons: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("the broker refused the subscription to %s: %s", self.topics.commands, failed)
        else:
            s.subscribed = True

    def _publish(
        self, s: _Session, topic: str, payload: bytes, retain: bool = False
    ) -> tuple[int, bool]:
        info = s.client.publish(topic, payload, qos=1, retain=retain)
        return info.mid, info.rc == paho.MQTT_ERR_SUCCESS

    # --- the loop's side: commands, state, outbox ------------------------------

    async def _command_worker(self) -> None:
        while True:
            session, message = await self._commands.get()
            outcome = await self.handler.handle(message.payload)
            if outcome.body is not None:
                log.debug("command %s answered: %s", outcome.command_id, outcome.body)
            if session is self._session and not session.ended.done():
                with contextlib.suppress(Exception):
                    session.client.ack(message.mid, message.qos)
            self.pump.pump()

    async def _ticks(self) -> None:
        t = self.timing
        last_state = last_outbox = last_refresh = self.clock.monotonic()
        while True:
            await asyncio.sleep(t.tick_s)
            try:
                now = self.clock.monotonic()
                self.pump.pump()
                s = self._session
                refresh = now - last_refresh >= t.refresh_s
                if self._kicked or now - last_outbox >= t.outbox_check_s:
                    last_outbox = now
                    if self._check_outbox() and s is not None and self.online:
                        self._publish(s, self.topics.status, self._status(True), retain=True)
                if self._kicked or now - last_state >= t.state_check_s or refresh:
                    last_state = now
                    self._kicked = False
                    if s is not None and self.online:
                        self._publish_state(s, force=refresh)
                if refresh and s is not None and self.online:
                    last_refresh = now
                    self._publish(s, self.topics.status, self._status(True), retain=True)
            except Exception:
                log.exception("cloud link tick failed; trying again")

    def _publish_state(self, s: _Session, force: bool = False) -> None:
        seen = self.presence() if self.presence is not None else None
        snapshot = state_snapshot(self.site, self.ledger.parcels.lockers(), seen)
        if force or snapshot != self._last_state:
            self._publish(
                s, self.topics.state, state_payload(snapshot, self.clock.now()), retain=True
            )
            self._last_state = snapshot

    def _status(self, online: bool) -> bytes:
        outbox = None
        if online:
            outbox = {
                "depth": self.outbox_depth,
                "cap": self.mqtt.outbox_cap,
                "level": self.outbox_level,
            }
        return status_payload(online, self.clock.now(), self.version, outbox)

    def _check_outbox(self, force: bool = False) -> bool:
        """Depth against `mqtt.outbox_cap`; logs the alarm. True when the level changed."""
        changed = self.alarm.check(self.ledger.outbox.depth(), self.clock.monotonic(), force)
        self.outbox_depth, self.outbox_level = self.alarm.depth, self.alarm.level
        return changed


def _close_later(client: paho.Client, _done: asyncio.Future[Any]) -> None:
    _close_socket(client)


def _close_socket(client: paho.Client) -> None:
    """Close what a connect() that is no longer wanted opened (paho has no loop to do it)."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
