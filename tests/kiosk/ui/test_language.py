"""Language per visit: a chooser at home, back to the site's language when the visit ends,
CLDR plural rules (Babel), and every screen whole at the kiosk's 800x480 in every language."""

from __future__ import annotations

import pytest
from babel import Locale
from fit_support import FIT_SIZE, cut_off
from textual.widgets import Button
from ui_support import (
    DISPLAYS,
    at_keypad,
    click,
    door_on_screen,
    make_app,
    on_top,
    screen_text,
    until,
)

from kiosk.ui import i18n
from kiosk.ui.screens.entry import CodeScreen, HomeScreen
from kiosk.ui.screens.help import HelpScreen
from kiosk.ui.screens.modals import PinModal
from kiosk.ui.screens.notice import ErrorScreen, LockoutScreen, UnreachableScreen
from kiosk.ui.widgets import TopBar

WRONG = "000000"


async def test_home_offers_each_language_named_in_itself(rig):
    async with at_keypad(rig.socket) as (app, pilot):
        labels = {b.id: str(b.label) for b in app.screen.query("Button.lang").results(Button)}
        assert labels == {"lang-en": "English", "lang-de": "Deutsch"}
        await click(pilot, "#lang-de")
        await until(pilot, lambda: "Willkommen" in screen_text(app), what="German home")
        assert app.screen.query_one("#lang-de").has_class("-current")


async def test_the_language_goes_back_to_the_sites_when_the_visit_ends(rig):
    async with at_keypad(rig.socket) as (app, pilot):
        await click(pilot, "#lang-de")
        await pilot.press(*WRONG, "enter")  # the visit goes on in German ...
        await until(pilot, lambda: on_top(app, ErrorScreen))
        assert "Code ist nicht gültig" in screen_text(app) or app.lang == "de"
        await click(pilot, "#back")  # ... and ends: home, in the site's language
        await until(pilot, lambda: on_top(app, HomeScreen))
        await until(pilot, lambda: "Welcome" in screen_text(app), what="English home")
        assert app.lang == "en"


async def test_a_chosen_language_is_dropped_when_the_visitor_walks_away(rig):
    now = [1000.0]
    app = make_app(rig.socket, language="de", idle_s=60, clock=lambda: now[0])
    async with app.run_test(size=FIT_SIZE) as pilot:
        await until(pilot, lambda: app.link.up)
        await click(pilot, "#lang-en")  # the site's language is German here
        await until(pilot, lambda: "Welcome" in screen_text(app))
        await pilot.press("1")
        assert isinstance(app.screen, CodeScreen) and app.lang == "en"
        now[0] += 61  # walked away mid-code: home, and the site's language again
        await until(pilot, lambda: on_top(app, HomeScreen), what="idle home")
        await until(pilot, lambda: "Willkommen" in screen_text(app), what="German again")


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_plural_texts_follow_the_cldr_rules_of_each_language(lang):
    """Each catalogue's plural tables have exactly the categories the CLDR gives the language."""
    tags = Locale.parse(lang).plural_form.tags | {"other"}
    plurals: dict[str, set[str]] = {}
    for key in i18n.catalogue(lang):
        base, _, category = key.rpartition(".")
        if category in ("zero", "one", "two", "few", "many", "other"):
            plurals.setdefault(base, set()).add(category)
    assert plurals, "no plural texts found"
    for base, categories in plurals.items():
        assert categories == tags, f"{lang}: {base} has {sorted(categories)}, CLDR {sorted(tags)}"
        texts = i18n.Texts(lang)
        for count in range(0, 30):
            category = Locale.parse(lang).plural_form(count)
            assert texts.plural(base, count, tries_left=count) == texts.t(
                f"{base}.{category}", count=count, tries_left=count
            )


async def _screens(app, pilot, admin):
    """Walk the app through each public screen; yield a name once each is on top."""
    yield "home"
    await pilot.press("1", "2")
    await until(pilot, lambda: on_top(app, CodeScreen))
    yield "code entry"
    await pilot.press("escape")
    await until(pilot, lambda: on_top(app, HomeScreen))
    await pilot.press(*WRONG, "enter")
    await until(pilot, lambda: on_top(app, ErrorScreen))
    yield "wrong code"
    app.show_error({"code": "door_state_unknown"}, retry=False)
    await until(pilot, lambda: on_top(app, ErrorScreen) and app.screen.code != "")
    yield "door state unknown"
    parcel = await admin.call("parcels.announce", size="S")
    await pilot.press(*parcel["delivery_code"], "enter")
    await until(pilot, lambda: door_on_screen(app) and app.screen.role == "courier")
    yield "door open (courier)"
    app.show(LockoutScreen(300))
    await until(pilot, lambda: on_top(app, LockoutScreen))
    yield "lockout"
    app.show(UnreachableScreen())
    await until(pilot, lambda: on_top(app, UnreachableScreen))
    yield "out of order"
    app.go_home()
    app.action_help()
    await until(pilot, lambda: on_top(app, HelpScreen))
    yield "help"
    app.go_home()
    app.action_service()
    await until(pilot, lambda: on_top(app, PinModal))
    yield "technician PIN"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
async def test_every_screen_fits_800x480_in_every_language(rig, admin, lang):
    app = make_app(rig.socket, language=lang, idle_s=3600)
    async with app.run_test(size=FIT_SIZE) as pilot:
        await until(pilot, lambda: app.link.up and app.last_status is not None)
        seen = []
        async for name in _screens(app, pilot, admin):
            app.set_language(lang)  # a screen's end of visit resets to the site's: the same
            await pilot.pause()
            await pilot.pause()
            problems = cut_off(app)
            assert not problems, f"{lang}, {name}: {problems}"
            seen.append(name)
        assert len(seen) == 9


async def test_the_fit_check_sees_a_cut_off_text():
    """The checker itself: a line too long for its one-line box, a button too narrow."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Cramped(App[None]):
        CSS = "#line { height: 1; width: 20; } #button { width: 8; min-width: 8; }"

        def compose(self) -> ComposeResult:
            yield Static("a sentence far too long for twenty cells", id="line")
            yield Button("Zurück zum Anfang", id="button")

    app = Cramped()
    async with app.run_test(size=FIT_SIZE) as pilot:
        await pilot.pause()
        problems = cut_off(app)
    assert any("sentence" in p for p in problems) and any("Zurück" in p for p in problems)


@pytest.mark.parametrize("display", ["800x480", "1280x800"])
@pytest.mark.parametrize("lang", i18n.LANGUAGES)
async def test_the_top_bar_fits_with_every_badge_shown(rig, lang, display):
    """The longest top bar: a cloud link down for hours and the idle countdown, beside
    Help, the language and Service, at the narrowest grids the page gives."""
    now = [1000.0]
    app = make_app(rig.socket, language=lang, idle_s=60, status_s=3600, clock=lambda: now[0])
    async with app.run_test(size=DISPLAYS[display].grid) as pilot:
        await until(pilot, lambda: app.link.up and app.last_status is not None)
        await pilot.press("1")
        await until(pilot, lambda: on_top(app, CodeScreen))
        bar = app.screen.query_one(TopBar)
        bar.set_online(False, 999 * 60)  # what `status` shows of a configured link down long
        now[0] += 50.5  # walked away: the countdown comes, at its widest ("10 s")
        badge = bar.query_one("#countdown-idle")
        await until(pilot, lambda: badge.display and badge.region.area, what="countdown")
        await pilot.pause()
        shown = {w.id for w in bar.children if w.display and w.region.area}
        assert {"offline", "countdown-idle", "help", "language", "service"} <= shown, shown
        assert "999 min" in screen_text(app) and "10 s" in screen_text(app)
        assert not cut_off(app), cut_off(app)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
async def test_the_technicians_touch_answers_fit_800x480_in_every_language(tmp_path, lang):
    """The reason of each action and a check's words as buttons, with their hints shown, and
    mapping a door (its label, size, column and row steps): whole at the smallest display."""
    from support.daemon_rig import DaemonRig

    from kiosk.api.aclient import AsyncApiClient
    from kiosk.ui.screens.commission import CommissionScreen
    from kiosk.ui.screens.maintenance import MaintenanceScreen
    from kiosk.ui.screens.modals import CheckModal, ReasonModal

    async with DaemonRig(tmp_path, backend="modbus", lockers=[("A-1", "S")]) as rig:
        admin = AsyncApiClient(rig.socket)
        await admin.connect()
        await admin.call("tech.set_pin", technician_id="t1", pin="471108")
        await admin.close()
        app = make_app(rig.socket, language=lang, idle_s=3600)
        async with app.run_test(size=FIT_SIZE) as pilot:
            await until(pilot, lambda: app.link.up and app.last_status is not None)
            await click(pilot, "#service")
            await until(pilot, lambda: on_top(app, PinModal))
            for digit in "471108":
                await click(pilot, f"#key-{digit}")
            await click(pilot, "#key-ok")
            await until(pilot, lambda: on_top(app, MaintenanceScreen), what="maintenance")
            for action in ("tech.open", "tech.out", "tech.in"):
                app.push_screen(ReasonModal(action, "A-1"))
                await until(pilot, lambda: on_top(app, ReasonModal))
                await click(pilot, "#reason-ok")  # nothing chosen: the hint shows
                await until(pilot, lambda: app.screen.query_one("#reason-hint").key != "")
                await pilot.pause()
                assert not cut_off(app), f"{lang}, {action}: {cut_off(app)}"
                app.pop_screen()
            app.push_screen(CheckModal("A-1"))
            await until(pilot, lambda: on_top(app, CheckModal))
            await click(pilot, "#check-empty")
            await until(pilot, lambda: app.screen.query_one("#check-hint").key != "")
            await pilot.pause()
            assert not cut_off(app), f"{lang}, check: {cut_off(app)}"
            app.pop_screen()
            app.push_screen(CommissionScreen())
            await until(pilot, lambda: on_top(app, CommissionScreen))
            await until(pilot, lambda: app.screen.query_one("#map-unit").value == "1")
            await click(pilot, "#map-start")
            await until(pilot, lambda: app.screen.query_one("#map-form").display, what="door")
            await pilot.pause()
            assert not cut_off(app), f"{lang}, mapping a door: {cut_off(app)}"
