"""Fixtures of the keypad tests: a real daemon (DaemonRig) in-process, and its admin client.

The flows run on the first backend (GPIO mock pins) only, as the keypad sees the
daemon's API and never a pin or a register; the smoke flows and the door physics
are marked to run on each backend, the simulated Modbus board over a pty too
(tests/conftest.py, ONE_BACKEND_DIRS).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.daemon_rig import DaemonRig

from kiosk.api.aclient import AsyncApiClient


@pytest.fixture
async def rig(tmp_path, backend, request: pytest.FixtureRequest) -> AsyncIterator[DaemonRig]:
    silence = request.node.get_closest_marker("bus_silence") is not None
    async with DaemonRig(tmp_path, backend=backend, silence=silence) as r:
        yield r


@pytest.fixture
async def admin(rig) -> AsyncIterator[AsyncApiClient]:
    """The technician's shell: an admin connection (same uid as the daemon) for setting up."""
    client = AsyncApiClient(rig.socket)
    await client.connect()
    yield client
    await client.close()
