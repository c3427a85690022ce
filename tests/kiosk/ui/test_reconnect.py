"""The daemon goes away and comes back: "out of order", then the keypad reconnects by itself."""

from __future__ import annotations

from support.daemon_rig import DaemonRig
from ui_support import SIZE, at_keypad, door_on_screen, make_app, on_top, screen_text, until

from kiosk.api.aclient import AsyncApiClient
from kiosk.ui.screens.entry import HomeScreen
from kiosk.ui.screens.notice import UnreachableScreen


async def test_daemon_stops_and_a_new_one_starts_on_the_same_socket(tmp_path, backend):
    rig = DaemonRig(tmp_path, backend=backend)
    await rig.__aenter__()
    admin = AsyncApiClient(rig.socket)
    await admin.connect()
    parcel = await admin.call("parcels.announce", size="S")
    await admin.close()
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press("1", "2")  # half a code typed when the daemon goes
        await rig.__aexit__(None, None, None)
        await until(pilot, lambda: on_top(app, UnreachableScreen), what="unreachable")
        assert "Out of order" in screen_text(app)
        assert "reconnecting" in screen_text(app).lower()
        await pilot.press(*"123456", "enter")  # typing at a dead bank does nothing bad
        await until(pilot, lambda: app.link.attempts >= 2, what="a second reconnect attempt")
        assert isinstance(app.screen, UnreachableScreen)

        # The same state dir, so the same socket path.
        async with DaemonRig(tmp_path, backend=backend) as again:
            assert again.socket == rig.socket
            await until(pilot, lambda: on_top(app, HomeScreen), what="home again")
            await pilot.press(*parcel["delivery_code"], "enter")  # the ledger kept the parcel
            await until(pilot, lambda: door_on_screen(app))
            assert app.screen.locker == "A-1"
            again.doors.close("A-1")
            await until(pilot, lambda: app.screen.finished == "delivered")


async def test_ui_started_before_the_daemon_waits_for_it(tmp_path, backend):
    socket = str(tmp_path / "kiosk.sock")  # what rig_config puts there
    app = make_app(socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: on_top(app, UnreachableScreen))
        async with DaemonRig(tmp_path, backend=backend) as rig:
            assert rig.socket == socket
            await until(pilot, lambda: on_top(app, HomeScreen) and app.link.up)


async def test_a_call_in_flight_when_the_daemon_dies_shows_out_of_order(tmp_path, backend):
    # 2 s a try: the call is surely still in flight when the test sees it busy.
    rig = DaemonRig(tmp_path, backend=backend, policy={"door_open_timeout_s": 2.0})
    await rig.__aenter__()
    admin = AsyncApiClient(rig.socket)
    await admin.connect()
    parcel = await admin.call("parcels.announce", size="S")
    await admin.close()
    rig.doors.jammed.add("A-1")  # the door never opens: code.submit waits on the sensor
    async with at_keypad(rig.socket) as (app, pilot):
        await pilot.press(*parcel["delivery_code"], "enter")
        await until(pilot, lambda: getattr(app.screen, "busy", False))
        await rig.daemon.server.close()  # the socket drops while the reply is pending
        await until(pilot, lambda: on_top(app, UnreachableScreen))
    await rig.__aexit__(None, None, None)


async def test_timers_and_daemon_messages_after_the_screens_are_gone(rig):
    """Textual can still tick a timer or deliver a link message while it tears the
    screens down (CI saw `ScreenStackError: No screens on stack` from the idle check).
    Every such path must do nothing then, not crash the shutdown."""
    from kiosk.ui.app import DaemonDown, DaemonEvent, DaemonUp

    app = make_app(rig.socket, idle_s=0.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        assert app.top is app.screen
    assert app.screen_stack == [] and app.top is None
    app.last_input = app.clock() - 3600  # long idle: the idle check would go home
    app._idle_check()
    app.on_daemon_up(DaemonUp({"api": 1}))
    app.on_daemon_down(DaemonDown())
    app.on_daemon_event(DaemonEvent("door.outcome", {"locker": "A-1"}))
    app.type_digit("1")
    app.action_service()
    assert app.screen_stack == []  # nothing was pushed onto a dead app
    assert app.outcomes_since(0) == [{"locker": "A-1"}]
