"""Mapping a new bank from the maintenance screen, against a real daemon on the simulated board.

The board (unit 1) has four channels and two lockers (channels 0 and 1): the
screen skips the lockers' channels, opens channels 2 and 3 through the daemon
(audited, pulsed on the simulated board), takes a door's answers and shows the
[[locker]] entries the daemon made of them.
"""

from __future__ import annotations

import pytest
from support.daemon_rig import DaemonRig
from textual.widgets import Button, Input, Static
from ui_support import SIZE, click, make_app, on_top, screen_text, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.commission import CommissionScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal

PIN = "471108"


@pytest.fixture
async def rig(tmp_path) -> DaemonRig:
    async with DaemonRig(tmp_path, backend="modbus", lockers=[("A-1", "S"), ("A-2", "S")]) as r:
        yield r


async def test_the_screen_maps_the_free_channels_and_shows_their_entries(rig):
    admin = AsyncApiClient(rig.socket)
    await admin.connect()
    await admin.call("tech.set_pin", technician_id="t1", pin=PIN)
    await admin.close()
    app = make_app(rig.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await pilot.press("f2")
        assert isinstance(app.screen, PinModal)
        await pilot.press(*PIN, "enter")
        await until(pilot, lambda: on_top(app, MaintenanceScreen), what="maintenance")
        app.screen.query_one("#tabs").active = "tab-health"
        await click(pilot, "#commission")
        await until(pilot, lambda: on_top(app, CommissionScreen), what="map screen")
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#map-bus", Input).value == "rs485")
        screen.query_one("#map-unit", Input).value = "1"
        await click(pilot, "#map-start")
        await until(pilot, lambda: "Channel 2 is open" in screen_text(app), what="channel 2")
        assert "door sensor reads open" in screen_text(app)
        screen.query_one("#map-label", Input).value = "A-1"  # taken: refused, asked again
        screen.query_one("#map-size", Input).value = "m"
        await click(pilot, "#map-save")
        await until(pilot, lambda: "A-1 is taken" in screen_text(app), what="refusal")
        assert "Channel 2 is open" in screen_text(app)
        screen.query_one("#map-label", Input).value = "N-1"
        screen.query_one("#map-column", Input).value = "3"
        # A Button ignores a tap while it still shows the last one: wait for that to pass.
        save = screen.query_one("#map-save", Button)
        await until(pilot, lambda: not save.has_class("-active"), what="save button ready")
        await click(pilot, "#map-save")
        await until(pilot, lambda: "Channel 3 is open" in screen_text(app), what="channel 3")
        await click(pilot, "#map-skip")
        result = screen.query_one("#map-result", Static)
        await until(pilot, lambda: "[[locker]]" in str(result.content), what="entries")
    toml = str(result.content)
    assert 'label = "N-1"' in toml and "channel = 2" in toml and "column = 3" in toml
    assert 'size = "M"' in toml and "[[board]]" not in toml  # board 1 is configured
    rows = rig.daemon.service.ctx.ledger.conn.execute(
        "SELECT actor, subject FROM audit WHERE action = 'hardware.map_open' ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("technician:t1", "rs485/1/2"),
        ("technician:t1", "rs485/1/3"),
    ]
    pulsed = [(p.unit, p.channel) for p in rig.bank.banks["rs485"].sim.pulses]
    assert pulsed == [(1, 2), (1, 3)]
