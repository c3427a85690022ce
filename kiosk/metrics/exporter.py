"""The bank's metrics: counters fed by the service's and the bus's observers, gauges read at scrape.

Everything runs on the daemon's event loop: the observers are called there,
and the scrape (kiosk.metrics.http) collects there, so the ledger is read on
the thread that owns its connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kiosk import __version__
from kiosk.clock import Clock, from_text
from kiosk.config.model import KioskConfig
from kiosk.domain.sizes import Size
from kiosk.domain.status import LockerStatus, ParcelStatus
from kiosk.ledger import readout
from kiosk.ledger.db import Ledger
from kiosk.service.observer import DOOR_RESULTS

#: Modbus request latency buckets (s): a pty round trip is ~0.3 ms, 9600 baud ~25 ms,
#: a timeout 0.3 s per attempt.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class KioskMetrics:
    """One registry per daemon. Implements ServiceObserver; `bus_request` is the bus observer."""

    def __init__(self, config: KioskConfig) -> None:
        disable_created_metrics()  # no `_created` series beside each counter: half the lines
        self.registry = CollectorRegistry()
        r = self.registry
        self.door_operations = Counter(
            "kiosk_door_operations",
            "Door operations by how their unlock ended",
            ["result"],
            registry=r,
        )
        self.bus_requests = Counter(
            "kiosk_bus_requests",
            "Modbus requests (retries inside one)",
            ["bus", "unit"],
            registry=r,
        )
        self.bus_errors = Counter(
            "kiosk_bus_errors",
            "Modbus requests that failed after their retries",
            ["bus", "unit"],
            registry=r,
        )
        self.bus_latency = Histogram(
            "kiosk_bus_request_duration_seconds",
            "Modbus request time, retries included",
            ["bus"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.code_failures = Counter(
            "kiosk_code_failures", "Wrong codes typed since the daemon started", registry=r
        )
        Info("kiosk_build", "The running kiosk's version", registry=r).info(
            {"version": __version__}
        )
        for result in DOOR_RESULTS:
            self.door_operations.labels(result)
        for board in config.boards:
            if _bus_kind(config, board.bus) != "gpio":
                self.bus_requests.labels(board.bus, str(board.unit))
                self.bus_errors.labels(board.bus, str(board.unit))
                self.bus_latency.labels(board.bus)
        self.last_selftest: datetime | None = None

    # --- ServiceObserver --------------------------------------------------------

    def door_operation(self, result: str) -> None:
        self.door_operations.labels(result).inc()

    def code_failure(self) -> None:
        self.code_failures.inc()

    def selftest(self, at: datetime) -> None:
        self.last_selftest = at

    # --- the bus observer (firmware_bridge.modbus.bus.RequestObserver) -------------

    def bus_request(self, bus: str, unit: int, seconds: float, answered: bool) -> None:
        self.bus_requests.labels(bus, str(unit)).inc()
        if not answered:
            self.bus_errors.labels(bus, str(unit)).inc()
        self.bus_latency.labels(bus).observe(seconds)

    # --- the state read at scrape ------------------------------------------------

    def watch(self, ledger: Ledger, clock: Clock, online: Callable[[], bool]) -> None:
        """Add the gauges read from the ledger and the link at each scrape."""
        self.registry.register(_StateCollector(self, ledger, clock, online))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _bus_kind(config: KioskConfig, name: str) -> str:
    return next((b.kind for b in config.buses if b.name == name), "")


class _StateCollector(Collector):
    def __init__(
        self, metrics: KioskMetrics, ledger: Ledger, clock: Clock, online: Callable[[], bool]
    ) -> None:
        self.metrics, self.ledger, self.clock, self.online = metrics, ledger, clock, online

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected only at scrape: never at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        conn, now = self.ledger.conn, self.clock.now()
        lockers = GaugeMetricFamily(
            "kiosk_lockers", "Lockers by status and size", labels=["status", "size"]
        )
        counts = readout.locker_counts(conn)
        for status in LockerStatus:
            for size in Size:
                lockers.add_metric(
                    [status.value, size.value], counts.get((status.value, size.value), 0)
                )
        yield lockers
        parcels = GaugeMetricFamily("kiosk_parcels", "Parcels by state", labels=["state"])
        by_state = readout.parcel_counts(conn)
        for state in ParcelStatus:
            parcels.add_metric([state.value], by_state.get(state.value, 0))
        yield parcels
        depth, oldest = readout.outbox_figures(conn)
        yield GaugeMetricFamily("kiosk_outbox_depth", "Events waiting for the broker", value=depth)
        age = max(0.0, (now - from_text(oldest)).total_seconds()) if oldest else 0.0
        yield GaugeMetricFamily(
            "kiosk_outbox_oldest_age_seconds",
            "Age of the oldest waiting event (0: none)",
            value=age,
        )
        yield GaugeMetricFamily(
            "kiosk_cloud_connected", "1 while the MQTT link is up", value=int(self.online())
        )
        limiter = self.ledger.codes.limiter()
        locked = limiter.site_locked or (
            limiter.locked_until is not None and limiter.locked_until > now
        )
        yield GaugeMetricFamily(
            "kiosk_lockout_active", "1 while code entry is locked", value=int(locked)
        )
        last = self.metrics.last_selftest
        yield GaugeMetricFamily(
            "kiosk_last_selftest_timestamp_seconds",
            "Unix time of the last sensor sweep since the daemon started (0: none yet)",
            value=last.timestamp() if last else 0.0,
        )
