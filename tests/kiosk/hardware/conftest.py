"""A modbus-rtu bank on a simulated board process: the config, the board, the commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon_proc import short_dir
from support.simboard_proc import SimBoardProcess


@pytest.fixture
def state(tmp_path) -> Path:
    return short_dir(tmp_path)


@pytest.fixture
def boards(tmp_path) -> Iterator[SimBoardProcess]:
    """Two kiosk-v1 map v2 boards with presence sensors; doors stay open once opened."""
    sim = SimBoardProcess(tmp_path, "--presence", "--auto-close", "0", units=2, channels=4)
    yield sim
    sim.close()
