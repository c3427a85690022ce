"""The daemon's life: build everything from config, recover, serve, supervise, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware_bridge.bank import BridgeError, LockBank
from kiosk.api.handlers import Api
from kiosk.api.server import ApiServer, Hub, check_socket_free
from kiosk.api.sessions import Sessions
from kiosk.api.visits import Visits
from kiosk.clock import Clock, SystemClock
from kiosk.config.model import KioskConfig
from kiosk.daemon.notify import Notifier
from kiosk.daemon.startup import bridge_failure
from kiosk.daemon.timekeeping import TrustedClock
from kiosk.domain.errors import AlreadyRunning, DeviceUnavailable
from kiosk.files import create_failure, make_folder
from kiosk.ledger.db import Ledger
from kiosk.service.locker_service import LockerService
from kiosk.tasks import cancel_all
from kiosk.wiring import build_lock_bank, build_service

log = logging.getLogger(__name__)

SESSION_IDLE_S = 300.0
STOP_BUS_TIMEOUT_S = 3.0  # the last door reading and closing the bus, at stop


class Daemon:
    """`kiosk run`. Everything is injected or built from config in `start()`."""

    def __init__(
        self,
        config: KioskConfig,
        clock: Clock | None = None,
        bank: LockBank | None = None,
        notifier: Notifier | None = None,
        sweep_every_s: float | None = None,
        cloud_timing: Any = None,  # kiosk.cloud.link.LinkTiming; tests shorten it
    ) -> None:
        self.config = config
        self.system_clock = clock or SystemClock()
        self.bank = bank
        self.notifier = notifier or Notifier()
        self.sweep_every_s = sweep_every_s or config.policy.sweep_minutes * 60.0
        self.hub = Hub()
        self.service: LockerService | None = None
        self.server: ApiServer | None = None
        self.ledger: Ledger | None = None
        self.online: Callable[[], bool] = lambda: False
        self.last_contact: Callable[[], datetime | None] = lambda: None
        self.down_for_s: Callable[[], float | None] = lambda: None
        # --- cloud link (kiosk/cloud): built in start() when [mqtt] is configured ---
        self.link: Any = None
        self.metrics_server: Any = None
        self.cloud_timing = cloud_timing
        self._ledger_lock: Any = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_poll = 0.0
        self._last_seq = 0

    # --- start-up -----------------------------------------------------------

    async def start(self) -> None:
        """Integrity check, outputs off, reconcile the journal, bind the API, then READY."""
        # First of all: is another daemon running here? Then touch nothing of its.
        socket_path = Path(self.config.api.socket)
        await check_socket_free(socket_path)
        make_folder("the API socket's folder", socket_path.parent, "api.socket")
        self._lock_ledger()
        self.ledger = Ledger.open(self.config.ledger.path)
        clock = TrustedClock(self.system_clock, self._last_trusted())
        # --- metrics (kiosk/metrics): the observers, built first; served once all is up ---
        metrics: Any = None
        if self.config.metrics is not None:
            from kiosk.metrics.exporter import KioskMetrics

            metrics = KioskMetrics(self.config)
        observer = metrics.bus_request if metrics is not None else None
        bank = self.bank or build_lock_bank(self.config, bus_observer=observer)
        self.bank = bank
        self.service = build_service(self.config, bank, clock, self.ledger, observer=metrics)
        try:
            recovered = await self.service.start()
        except BridgeError as exc:
            raise bridge_failure(exc) from exc
        if recovered:
            log.warning(
                "recovered %d door operation(s) interrupted by a crash; "
                "lockers flagged for a technician's check",
                recovered,
            )
        self.service.sweep()
        self._last_seq = self.ledger.outbox.last_seq()
        # --- cloud link (kiosk/cloud) ---
        if self.config.mqtt is not None:
            from kiosk.cloud.wiring import build_link

            self.link = build_link(self.config, self.service, clock, self.cloud_timing)
            await self.link.start()
            self.online = lambda: bool(self.link is not None and self.link.online)
            self.last_contact = lambda: self.link.last_contact if self.link else None
            self.down_for_s = lambda: _down_for_s(self.link, clock.monotonic())
        # --- end cloud link ---
        sessions = Sessions(SESSION_IDLE_S, clock.monotonic)
        api = Api(
            self.service,
            sessions,
            self.config.site.id,
            online=lambda: self.online(),
            last_contact=lambda: self.last_contact(),
            cloud=self.config.mqtt is not None,
            down_for_s=lambda: self.down_for_s(),
            help_phone=self.config.site.help_phone,
            help_text=self.config.site.help_text,
            visits=Visits(clock.monotonic),
        )
        self.server = ApiServer(api, Path(self.config.api.socket), self.hub)
        await self.server.start()
        if metrics is not None:
            await self._serve_metrics(metrics, clock)
        self._last_poll = clock.monotonic()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(self._poll_s(), self._supervise), name="supervise"),
            loop.create_task(self._every(self.sweep_every_s, self._sweep), name="sweep"),
        ]
        interval = self.notifier.watchdog_interval_s()
        if interval:
            self._tasks.append(loop.create_task(self._watchdog(interval), name="watchdog"))
        self.notifier.ready(f"serving {len(self.config.lockers)} lockers")
        log.info(
            "kiosk daemon ready: site %s, %d lockers, API at %s",
            self.config.site.id,
            len(self.config.lockers),
            self.config.api.socket,
        )

    async def _serve_metrics(self, metrics: Any, clock: Clock) -> None:
        from kiosk.metrics.http import MetricsServer

        assert self.config.metrics is not None and self.ledger is not None
        metrics.watch(self.ledger, clock, lambda: self.online())
        where = self.config.metrics
        self.metrics_server = MetricsServer(where.host, where.port, metrics.exposition)
        try:
            await self.metrics_server.start()
        except OSError as exc:
            raise DeviceUnavailable(
                f"cannot start: metrics.listen {where.listen}: {exc.strerror or exc}; "
                "choose a free port, or leave [metrics] out",
                listen=where.listen,
            ) from None

    def _lock_ledger(self) -> None:
        """One daemon per ledger file, even with two configs naming different sockets."""
        path = Path(f"{self.config.ledger.path}.lock")
        make_folder("the ledger's folder", path.parent, "ledger.path")
        try:
            handle = open(path, "a+")  # noqa: SIM115 (held open for the daemon's life)
        except OSError as exc:
            raise create_failure("the ledger's lock file", path, exc, "ledger.path") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise AlreadyRunning(
                f"Another daemon is using the ledger {self.config.ledger.path}; stop it first "
                "(`systemctl stop kiosk`), or give this config its own `ledger.path`",
                path=str(self.config.ledger.path),
            ) from None
        self._ledger_lock = handle

    def _last_trusted(self):  # type: ignore[no-untyped-def]
        assert self.ledger is not None
        return self.ledger.settings.trusted_time()

    def _poll_s(self) -> float:
        return min((b.poll_ms for b in self.config.buses), default=100) / 1000

    # --- running ------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> int:
        """Start, call `ready`, serve until SIGTERM/SIGINT, stop cleanly. Exit code 0."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self.start()
            if ready is not None:
                ready()
            await self._stop.wait()
        finally:
            await self.stop()
        return 0

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again", getattr(job, "__name__", job))
            await asyncio.sleep(interval)

    async def _supervise(self) -> None:
        assert self.service is not None
        report = await self.service.supervise()
        self._last_poll = self.service.clock.monotonic()
        for outcome in report.outcomes:
            self.hub.publish("door.outcome", outcome.to_dict())
        for alert in report.alerts:
            self.hub.publish(
                "door.alert",
                {"label": alert.label, "kind": alert.kind, "open_s": round(alert.open_s)},
            )
        self._publish_new_events()

    def _publish_new_events(self) -> None:
        assert self.ledger is not None
        for event in self.ledger.outbox.pending(limit=500, after_seq=self._last_seq):
            self.hub.publish(
                "ledger.event",
                {"seq": event.seq, "type": event.type, "ts": event.ts, "body": event.body},
            )
            self._last_seq = event.seq

    async def _sweep(self) -> None:
        assert self.service is not None and self.ledger is not None
        report = self.service.sweep()
        self.ledger.settings.set_trusted_time(self.service.clock.now())
        if report.expired or report.expiring or report.reminders:
            log.info("sweep: %s", report)

    async def _watchdog(self, interval: float) -> None:
        """WATCHDOG=1 only while door supervision keeps completing polls (bus owners alive)."""
        assert self.service is not None
        stall_limit = max(3 * interval, 5.0)
        while True:
            age = self.service.clock.monotonic() - self._last_poll
            if age <= stall_limit:
                self.notifier.watchdog()
            else:
                log.error("door supervision stalled for %.1f s; withholding the watchdog", age)
            await asyncio.sleep(interval)

    # --- stopping -----------------------------------------------------------

    async def stop(self) -> None:
        """STOPPING, stop taking requests, let a door operation in flight finish, flush, close."""
        self.notifier.stopping()
        if self.server is not None:
            policy = self.config.policy
            grace = policy.door_open_timeout_s * (1 + policy.unlock_retries) + 1.0
            await self.server.close(grace_s=grace)
        await cancel_all(self._tasks)
        self._tasks = []
        if self.metrics_server is not None:
            await self.metrics_server.close()
            self.metrics_server = None
        # Bounded: a wedged bus owner must not keep the daemon from exiting (and the
        # ledger from being closed cleanly) until systemd's stop timeout kills it.
        if self.service is not None:
            with contextlib.suppress(Exception):  # incl. TimeoutError
                # record any closing that already happened
                await asyncio.wait_for(self.service.poll_doors(), STOP_BUS_TIMEOUT_S)
        if self.bank is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.bank.close(), STOP_BUS_TIMEOUT_S)
        # --- cloud link (kiosk/cloud): offline status, then close; the outbox keeps the rest ---
        if self.link is not None:
            with contextlib.suppress(Exception):
                await self.link.stop()
            self.link = None
            self.online = lambda: False
        # --- end cloud link ---
        if self.ledger is not None:
            with contextlib.suppress(Exception):
                self.ledger.checkpoint()
            self.ledger.close()
            self.ledger = None
        if self._ledger_lock is not None:
            self._ledger_lock.close()  # closing the file releases the lock
            self._ledger_lock = None
        log.info("kiosk daemon stopped")


def _down_for_s(link: Any, now: float) -> float | None:
    """Seconds the cloud link has been down (since start if never up); None while up."""
    since = None if link is None or link.online else link.down_since
    return None if since is None else max(0.0, now - since)
