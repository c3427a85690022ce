"""The test rig itself: parallel workers, one backend for the keypad flows, a broker that moves,
fake time."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import tomllib
from datetime import timedelta
from pathlib import Path

from support.broker import Broker
from support.clock import FakeClock


def test_a_broker_whose_port_another_process_took_starts_on_new_ports(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")
    taken = broker.port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        broker.start()
        try:
            assert broker.port != taken
            assert broker.proc is not None and broker.proc.poll() is None
            with socket.create_connection(("127.0.0.1", broker.port), timeout=10):
                pass
        finally:
            broker.stop()


def test_keypad_flows_run_on_one_backend_and_the_smoke_flows_on_each() -> None:
    tests = Path(__file__).parent
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n0", "-p", "no:randomly"]
        + [str(tests / "kiosk" / "ui" / name) for name in ("test_courier.py", "test_customer.py")],
        cwd=tests.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = set(out.split())
    courier = "tests/kiosk/ui/test_courier.py::"
    assert f"{courier}test_on_screen_keypad_buttons[gpio]" in ids
    assert f"{courier}test_on_screen_keypad_buttons[modbus]" not in ids
    for backend in ("gpio", "modbus"):
        assert f"{courier}test_jammed_door_moves_the_courier_to_the_next_locker[{backend}]" in ids


def test_the_readmes_command_runs_on_four_workers_and_shows_the_slowest_tests() -> None:
    """Four workers on a two-core machine: the suite mostly waits (docs/benchmarks.md)."""
    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    addopts = config["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert "--durations=15" in addopts
    assert addopts[addopts.index("-n") + 1] == "4"
    assert any(
        dep.startswith("pytest-xdist") for dep in config["project"]["optional-dependencies"]["test"]
    )


async def test_fake_time_moves_only_when_something_moves_it() -> None:
    clock = FakeClock()
    mono, wall = clock.monotonic(), clock.now()
    time.sleep(0.02)  # real time passes ...
    assert (clock.monotonic(), clock.now()) == (mono, wall)  # ... fake time does not
    clock.advance(days=1)  # the wall clock is set: monotonic timers do not see it
    assert clock.monotonic() == mono
    clock.elapse(90)  # time passes: both clocks, at once
    assert clock.monotonic() == mono + 90
    assert clock.now() == wall + timedelta(days=1, seconds=90)
    await clock.sleep(0.25)  # the service's pause between two door readings
    assert clock.monotonic() == mono + 90.25


def test_no_two_test_modules_share_a_name() -> None:
    """pytest imports test modules by their base name (rootdir-relative, no __init__.py):
    two test_x.py in different folders break the collection of whichever worker meets
    the second one."""
    tests = Path(__file__).parent
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
