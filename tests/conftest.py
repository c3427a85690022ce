"""Shared fixtures: a real SQLite ledger file, a GPIO bank on MockFactory pins, the service."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from support.clock import FakeClock
from support.rig import DEFAULT_LOCKERS, FAST_POLICY, Bank, build_bank

__all__ = ["DEFAULT_LOCKERS", "FAST_POLICY", "Bank", "build_bank"]


@pytest.fixture
def pin_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def code_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
async def bank(tmp_path, pin_factory, code_key) -> AsyncIterator[Bank]:
    rig = build_bank(str(tmp_path / "ledger.db"), pin_factory, code_key, FakeClock())
    await rig.gpio.start()  # claims the pins (pull-ups drive every sensor high) ...
    rig.doors.start()  # ... then the physics shuts every door
    await rig.service.start()
    yield rig
    await rig.doors.stop()
    await rig.gpio.close()
    rig.ledger.close()
