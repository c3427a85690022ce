"""A visible countdown before an idle screen goes home; a touch takes it away."""

from __future__ import annotations

from ui_support import SIZE, make_app, on_top, screen_text, until

from kiosk.ui.screens.entry import CodeScreen, HomeScreen


async def test_a_countdown_shows_before_the_idle_return_home(rig):
    now = [1000.0]  # the app's idle clock: it moves only when the test says so
    app = make_app(rig.socket, idle_s=60, clock=lambda: now[0])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await pilot.press("1", "2")
        assert isinstance(app.screen, CodeScreen)
        now[0] += 52  # 8 s left: the countdown shows
        await until(pilot, lambda: "home in 8 s" in screen_text(app), what="countdown")
        await pilot.press("3")  # a touch: the countdown goes, the code stays
        await until(pilot, lambda: "home in" not in screen_text(app), what="countdown gone")
        assert app.screen.digits == "123"
        now[0] += 55
        await until(pilot, lambda: "home in 5 s" in screen_text(app), what="countdown again")
        now[0] += 5
        await until(pilot, lambda: on_top(app, HomeScreen), what="home")
        assert "home in" not in screen_text(app)  # home waits: no countdown there
