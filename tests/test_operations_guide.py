"""docs/operations.md is a guide an operator follows from a blank Pi, and its alarm list is whole.

* The numbered sections come in the order a bank is set up, 1 to 12.
* Every alarm the cloud is told to raise (docs/cloud.md's event table:
  "alarm" or "maintenance ticket") and every Prometheus alert rule of
  docs/monitoring/kiosk-alerts.yml has a row in section 11, so a new alarm
  fails here until an operator can look up what it means.
* The anchors other files link to survive the restructuring (the links
  themselves are checked in tests/test_doc_links.py; these are the ones that
  scripts, units and messages name by heading too).

Every `kiosk` command the guide tells an operator to type is parsed in
tests/systemd/test_units.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_doc_links import anchors

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "docs" / "operations.md"
CLOUD = ROOT / "docs" / "cloud.md"
ALERTS = ROOT / "docs" / "monitoring" / "kiosk-alerts.yml"

#: The guide's sections, in order: a word each title must hold.
SECTIONS = [
    "prepare the pi",
    "install",
    "configure",
    "enrol",
    "boards",
    "technicians",
    "screen",
    "monitoring",
    "backup and restore",
    "upgrade",
    "alarm",
    "troubleshooting",
]


def text() -> str:
    return OPERATIONS.read_text(encoding="utf-8")


def numbered_sections() -> list[tuple[int, str]]:
    return [(int(n), title) for n, title in re.findall(r"^## (\d+)\. (.+)$", text(), re.M)]


def section(number: int) -> str:
    body = text()
    start = re.search(rf"^## {number}\. .*$", body, re.M)
    assert start, f"docs/operations.md has no section {number}"
    end = body.find("\n## ", start.end())
    return body[start.start() : end if end > 0 else len(body)]


def test_the_guide_has_its_numbered_sections_in_order():
    found = numbered_sections()
    assert [n for n, _ in found] == list(range(1, len(SECTIONS) + 1)), found
    for (n, title), word in zip(found, SECTIONS, strict=True):
        assert word in title.lower(), f"section {n} ({title!r}) should be about {word!r}"


def test_the_numbered_sections_come_before_the_reference():
    body = text()
    last = body.index(f"\n## {len(SECTIONS)}. ")
    for heading in ("## Reference", "## Hardening, and what it costs"):
        assert body.index(heading) > last, f"{heading!r} belongs after the numbered sections"


def cloud_alarms() -> list[str]:
    """Event types docs/cloud.md tells the cloud to raise an alarm or a ticket for."""
    out = []
    for line in CLOUD.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `") and re.search(r"\*\*alarm|maintenance ticket", line):
            first = line.split("|")[1]
            out += re.findall(r"`([a-z]+\.[a-z_]+)`", first)
    return out


def alert_rules() -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)$", ALERTS.read_text(encoding="utf-8"), re.M)


def test_the_scans_find_the_alarms():
    assert {"door.jammed", "door.forced", "code.lockout", "parcel.missing"} <= set(cloud_alarms())
    assert {"KioskDown", "KioskCodeLockout", "KioskNoSelftest"} <= set(alert_rules())


@pytest.mark.parametrize("event", cloud_alarms())
def test_every_alarm_event_is_in_the_alarm_table(event):
    assert f"`{event}`" in section(11), f"docs/operations.md section 11 does not explain {event}"


@pytest.mark.parametrize("alert", alert_rules())
def test_every_alert_rule_is_in_the_alarm_table(alert):
    assert f"`{alert}`" in section(11), f"docs/operations.md section 11 does not explain {alert}"


@pytest.mark.parametrize(
    "line",
    [
        "outbox FULL",
        "outbox near its cap",
        "door_state_unknown",
        "is offline",
        "keys.cloud_public_key_file is not set",
        "mqtt.tls = false",
        "Watchdog timeout",
    ],
)
def test_the_alarm_table_knows_the_log_lines_and_outcomes(line):
    assert line in section(11), f"docs/operations.md section 11 does not explain {line!r}"


@pytest.mark.parametrize(
    "anchor",
    [
        "backup-and-restore",
        "upgrade",
        "when-kiosk-run-will-not-start",
        "monitoring-prometheus-metrics",
        "is-this-bank-healthy-kiosk-doctor",
        "a-support-bundle-kiosk-diag",
        "alarms-and-events-what-they-mean-what-to-do",
        "install-with-one-command-installsh",
        "what-runs-where",
    ],
)
def test_the_old_anchors_still_lead_somewhere(anchor):
    assert anchor in anchors(OPERATIONS)
