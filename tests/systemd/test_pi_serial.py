"""kiosk.service on a Raspberry Pi: its own UARTs are reachable, and the hardening is explained.

* DeviceAllow= covers every serial device a lock bus may sit on: USB adapters
  (ttyUSB, ttyACM) and the Pi's own UARTs (the PL011 ttyAMA*, the mini UART
  ttyS*, and /dev/serial0, a udev symlink to one of them).
* `systemd-analyze security --offline=true` scores the unit 2.0 or better
  (OK), docs/operations.md gives that score, and names every setting the
  analysis still counts against the unit, with what it is for.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from test_units import OPERATIONS, _tool, read_unit, values
from test_units import unit_dir as unit_dir  # the units with a real ExecStart binary

#: A device name on a Pi (or a PC) -> the kernel driver name its major number has
#: in /proc/devices, which is what DeviceAllow=char-NAME matches.
SERIAL_DEVICES = {
    "ttyUSB0": {"ttyUSB"},  # FTDI, CH340/CH341, CP210x, PL2303 adapters (usbserial)
    "ttyACM0": {"ttyACM"},  # CDC-ACM adapters
    "ttyAMA0": {"ttyAMA"},  # the Pi's PL011 UART (amba-pl011); ttyAMA10 on a Pi 5
    "ttyS0": {"ttyS"},  # the Pi's mini UART (8250 driver)
    # udev's symlink to the primary UART: ttyS0 or ttyAMA0, by model and Bluetooth.
    "serial0": {"ttyS", "ttyAMA"},
    "serial1": {"ttyS", "ttyAMA"},
}
MAX_DAEMON_EXPOSURE = 2.0


def _allowed_classes() -> dict[str, str]:
    daemon = read_unit("kiosk.service")
    out = {}
    for entry in values(daemon, "Service", "DeviceAllow"):
        device, access = entry.split()
        out[device] = access
    return out


@pytest.mark.parametrize("device", sorted(SERIAL_DEVICES))
def test_daemon_may_open_every_serial_port_a_bus_may_use(device):
    allowed = _allowed_classes()
    for driver in SERIAL_DEVICES[device]:
        assert allowed.get(f"char-{driver}") == "rw", (
            f"/dev/{device} is a {driver} device: DeviceAllow=char-{driver} rw is missing"
        )


def test_device_policy_stays_closed():
    assert values(read_unit("kiosk.service"), "Service", "DevicePolicy") == ["closed"]


def _security(unit_dir) -> tuple[float, list[str]]:  # type: ignore[no-untyped-def]
    run = subprocess.run(
        [
            _tool("systemd-analyze"),
            "security",
            "--offline=true",
            "--no-pager",
            str(unit_dir / "kiosk.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit_dir,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", run.stdout)
    assert found, run.stdout + run.stderr
    exposed = re.findall(r"^✗ (\S+?)=", run.stdout, re.M)
    return float(found.group(1)), exposed


def _hardening_section() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index("## Hardening, and what it costs")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_daemon_scores_ok_and_the_guide_gives_the_score(unit_dir):
    score, _exposed = _security(unit_dir)
    assert score <= MAX_DAEMON_EXPOSURE, f"kiosk.service exposure {score} is worse than OK"
    row = re.search(r"^\| `kiosk.service` \| \*\*(\d+\.\d+)\*\* \(OK\)", _hardening_section(), re.M)
    assert row, "docs/operations.md: no score row for kiosk.service in the hardening table"
    assert float(row.group(1)) == score, (
        f"docs/operations.md gives {row.group(1)}, systemd-analyze says {score}"
    )


def test_the_guide_says_what_every_remaining_exposure_is_for(unit_dir):
    _score, exposed = _security(unit_dir)
    section = _hardening_section()
    missing = [name for name in exposed if f"`{name}=`" not in section]
    assert not missing, f"docs/operations.md does not explain: {missing}"
