"""`[metrics]`: a real `kiosk run` serves /metrics; scraped over HTTP after a delivery, parsed
with prometheus_client's own text parser."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.broker import free_port
from support.daemon_proc import (
    DaemonProcess,
    kiosk,
    kiosk_json,
    short_dir,
    wait_until,
    write_config,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_config(tmp_path: Path, listen: str) -> Path:
    config = write_config(short_dir(tmp_path))
    config.write_text(config.read_text() + f'[metrics]\nlisten = "{listen}"\n')
    return config


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_a_delivery_shows_in_the_scraped_metrics(tmp_path):
    port = free_port()
    config = metrics_config(tmp_path, f"127.0.0.1:{port}")
    with DaemonProcess(config) as daemon:
        before = scrape(port)
        assert value(before, "kiosk_parcels", state="DELIVERED") == 0
        assert value(before, "kiosk_door_operations_total", result="opened") == 0
        assert value(before, "kiosk_last_selftest_timestamp_seconds") == 0

        rc, announced = kiosk_json(config, "parcels", "announce", "--size", "S")
        assert rc == 0, announced
        rc, opened = kiosk_json(config, "code", announced["delivery_code"])
        assert rc == 0 and opened["ok"], opened
        wait_until(
            lambda: value(scrape(port), "kiosk_parcels", state="DELIVERED") == 1,
            what="the delivery in the metrics",
        )
        wrong = next(c for c in ("000000", "111111") if c not in announced.values())
        assert kiosk(config, "code", wrong).returncode == 1
        assert kiosk(config, "selftest").returncode == 0, daemon.log()

        after = scrape(port)

    assert value(after, "kiosk_door_operations_total", result="opened") == 1
    assert value(after, "kiosk_door_operations_total", result="jammed") == 0
    assert value(after, "kiosk_lockers", status="OCCUPIED", size="S") == 1
    assert value(after, "kiosk_lockers", status="AVAILABLE", size="S") == 1
    assert value(after, "kiosk_code_failures_total") == 1
    assert value(after, "kiosk_lockout_active") == 0
    assert value(after, "kiosk_last_selftest_timestamp_seconds") > 0
    # No [mqtt]: the events wait in the outbox, and the link is down.
    assert value(after, "kiosk_outbox_depth") >= 2  # door.opened, door.closed, parcel.delivered
    assert value(after, "kiosk_outbox_oldest_age_seconds") >= 0
    assert value(after, "kiosk_cloud_connected") == 0
    # The bus: every door poll and the unlock went through the observed bus owner.
    requests = value(after, "kiosk_bus_requests_total", bus="sim", unit="1")
    assert requests > value(before, "kiosk_bus_requests_total", bus="sim", unit="1")
    assert value(after, "kiosk_bus_errors_total", bus="sim", unit="1") == 0
    assert value(after, "kiosk_bus_request_duration_seconds_count", bus="sim") == requests
    build = [k for k in after if k[0] == "kiosk_build_info"]
    assert len(build) == 1 and dict(build[0][1])["version"]


def test_only_metrics_is_served(tmp_path):
    port = free_port()
    config = metrics_config(tmp_path, f"127.0.0.1:{port}")
    with DaemonProcess(config), pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30)
    assert caught.value.code == 404


def test_a_taken_metrics_port_stops_the_start_with_one_line(tmp_path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = metrics_config(tmp_path, f"127.0.0.1:{taken}")
        done = kiosk(config, "run")
    assert done.returncode == 69, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "metrics.listen" in lines[0], done.stderr


@pytest.mark.parametrize("listen", ["9108", "127.0.0.1:0", "127.0.0.1:70000", "a b:1"])
def test_a_bad_listen_address_is_refused_naming_the_key(tmp_path, listen):
    config = metrics_config(tmp_path, listen)
    done = kiosk(config, "config", "check", str(config))
    assert done.returncode == 78  # EX_CONFIG, as for every config error
    assert "metrics.listen" in done.stderr


def test_the_shipped_dashboard_and_alert_rules_use_only_served_metrics(tmp_path):
    """docs/monitoring/ names only metrics a daemon serves (read from a real exposition)."""
    import json
    import re

    import yaml

    from kiosk.clock import SystemClock
    from kiosk.config.loader import load_config
    from kiosk.ledger.db import Ledger
    from kiosk.metrics.exporter import KioskMetrics

    config = load_config(metrics_config(tmp_path, "127.0.0.1:9108"))
    metrics = KioskMetrics(config)
    ledger = Ledger.open(config.ledger.path)
    try:
        metrics.watch(ledger, SystemClock(), lambda: False)
        served = {
            s.name
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for s in family.samples
        }
    finally:
        ledger.close()
    docs = Path(__file__).resolve().parents[3] / "docs" / "monitoring"
    rules = yaml.safe_load((docs / "kiosk-alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bkiosk_[a-z_]+", e)}
    assert used, "no kiosk_ metric found in docs/monitoring"
    assert used <= served, sorted(used - served)
