"""Shared fixtures: a real SQLite ledger file and the service on each real lock backend.

`bank` runs every test that uses it once per backend in BACKENDS: "gpio"
(GpioLockBank on MockFactory pins) and "modbus" (SimulatedLockBank: the
Modbus backend over a real pty against a simulated RTU bus). A test that only
one backend can run says so with `@pytest.mark.backends("gpio", reason=...)`.

Where the backend does not change what is tested, one backend is enough: tests
under a directory in ONE_BACKEND_DIRS (the keypad UI, whose flows talk to the
daemon's API and never see a pin or a register) run on BACKENDS[0] only,
unless their `backends` marker names more. The UI's smoke flows (a delivery,
a pickup, a technician's door opening, the door physics of a jammed or
left-open door) carry `@pytest.mark.backends(*BACKENDS, reason=...)` and so
still run on each backend; door physics, bus errors and supervision are tested
on both backends in their own directories.

The Modbus rigs await each reply long enough for a loaded machine
(support.rig.SIM_TIMEOUT_S); a test that waits out a silence (a silent board,
a dropped or late frame) carries `@pytest.mark.bus_silence` and gets the short
SIM_SILENCE_TIMEOUT_S instead (here, and in the keypad's DaemonRig).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from support.clock import FakeClock
from support.rig import (
    BACKENDS,
    DEFAULT_LOCKERS,
    FAST_POLICY,
    SIM_SILENCE_TIMEOUT_S,
    Bank,
    build_bank,
    build_modbus_bank,
    simulated_lock_bank,
)

__all__ = ["BACKENDS", "DEFAULT_LOCKERS", "FAST_POLICY", "Bank", "build_bank"]


#: Directories (under tests/) whose tests run on BACKENDS[0] unless marked otherwise.
ONE_BACKEND_DIRS = ("kiosk/ui",)


def _in_one_backend_dir(metafunc: pytest.Metafunc) -> bool:
    tests_dir = os.path.dirname(__file__)
    rel = os.path.relpath(str(metafunc.definition.path), tests_dir)
    return any(rel.startswith(d + os.sep) for d in ONE_BACKEND_DIRS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names, reason): run the `bank` fixture only on these lock backends "
        f"(of {', '.join(BACKENDS)}); `reason` says why the others cannot",
    )
    config.addinivalue_line(
        "markers",
        "bus_silence: the test waits out a silent board or a lost frame: the Modbus rig "
        "awaits each reply only SIM_SILENCE_TIMEOUT_S (s), not the generous default",
    )


def silence_expected(request: pytest.FixtureRequest) -> bool:
    """Whether the test waits out a bus silence (`@pytest.mark.bus_silence`)."""
    return request.node.get_closest_marker("bus_silence") is not None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `backend` (and so `bank`) over BACKENDS, BACKENDS[0] or the `backends` marker."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = BACKENDS[:1] if _in_one_backend_dir(metafunc) else BACKENDS
    if marker is not None:
        names = marker.args
        unknown = set(names) - set(BACKENDS)
        if unknown or not names or not marker.kwargs.get("reason"):
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: backends() takes names from {BACKENDS} "
                f"and a reason=, got {names} {marker.kwargs}"
            )
    metafunc.parametrize("backend", names)


@pytest.fixture
def pin_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def code_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
async def bank(
    tmp_path, backend: str, code_key: bytes, request: pytest.FixtureRequest
) -> AsyncIterator[Bank]:
    path = str(tmp_path / "ledger.db")
    if backend == "gpio":
        rig = build_bank(path, request.getfixturevalue("pin_factory"), code_key, FakeClock())
    else:
        lock_bank = None
        if silence_expected(request):
            lock_bank = simulated_lock_bank(len(DEFAULT_LOCKERS), timeout_s=SIM_SILENCE_TIMEOUT_S)
        rig = build_modbus_bank(path, code_key, FakeClock(), lock_bank=lock_bank)
    try:
        await rig.start()
        yield rig
    finally:
        await rig.stop()
