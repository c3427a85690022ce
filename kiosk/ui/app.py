"""`kiosk ui`: the keypad screen, a client of the daemon's local API and nothing else."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme

from kiosk.ui import i18n
from kiosk.ui.link import BACKOFF_S, ApiError, DaemonLink, DaemonUnreachable
from kiosk.ui.screens.base import KioskModal, KioskScreen, Relabels
from kiosk.ui.screens.door import OpenScreen
from kiosk.ui.screens.entry import CodeScreen, HomeScreen
from kiosk.ui.screens.help import HelpScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.modals import PinModal
from kiosk.ui.screens.notice import ErrorScreen, LockoutScreen, UnreachableScreen
from kiosk.ui.widgets import TopBar

log = logging.getLogger(__name__)

#: Seconds without a touch or key before a screen goes back home.
IDLE_S = 60.0
#: Seconds before the idle return home that a countdown shows on the screen.
COUNTDOWN_S = 10.0
#: Seconds between `status` calls (the offline badge, the paused notice).
STATUS_S = 2.0
#: Seconds the "thank you" after a pickup stays before the screen goes home.
THANKS_S = 5.0
#: Seconds after a pickup's door shut that "I left something" can open it again (the
#: daemon allows 30 s; the screen's thank-you stays as long, then goes home).
REOPEN_S = 30.0
#: Black, white and amber: readable in sunlight and by people with low vision.
CONTRAST = Theme(
    name="kiosk-contrast",
    primary="#ffd400",
    secondary="#ffffff",
    accent="#ffd400",
    warning="#ffd400",
    error="#ff5f5f",
    success="#5fff87",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1c1c1c",
    dark=True,
)
#: door.outcome events kept for a result screen that mounts after its door already shut.
_KEEP_OUTCOMES = 50


class DaemonUp(Message):
    def __init__(self, hello: dict[str, Any]) -> None:
        super().__init__()
        self.hello = hello


class DaemonDown(Message):
    pass


class DaemonEvent(Message):
    def __init__(self, event: str, data: dict[str, Any]) -> None:
        super().__init__()
        self.event, self.data = event, data


class KioskApp(App[None]):
    """Screens above a HomeScreen that is never popped; the daemon link runs in a worker."""

    CSS_PATH = "kiosk.tcss"
    TITLE = "locker-kiosk"  # the window's (and a snapshot's) title; the screens say their own
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "service", show=False),
        Binding("f3", "language", show=False),
    ]

    def __init__(
        self,
        socket_path: str,
        *,
        language: str = i18n.DEFAULT,
        idle_s: float = IDLE_S,
        status_s: float = STATUS_S,
        thanks_s: float = THANKS_S,
        reopen_s: float = REOPEN_S,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
        demo_codes: Sequence[tuple[str, str, str]] = (),
        demo_pin: str = "",
    ) -> None:
        super().__init__()
        self.texts = i18n.Texts(language)  # the language shown now: this app's, no one else's
        self.default_lang = language  # the site's: each visit starts in it and returns to it
        self.idle_s, self.status_s, self.thanks_s = idle_s, status_s, thanks_s
        self.reopen_s = reopen_s
        self.clock = clock
        self.demo_codes = tuple(demo_codes)  # (parcel, delivery, pickup): only `kiosk demo`
        self.demo_pin = demo_pin  # the demo bank's technician PIN: only `kiosk demo`
        # The cloud link as `status` last said: None before the first answer and on a
        # bank with no [mqtt] at all (nothing to be offline from: no badge).
        self.online: bool | None = None
        self.offline_s: int | None = None  # how long the configured link has been down
        self.last_status: dict[str, Any] | None = None  # the daemon's last `status` answer
        # [site] help_phone / help_text as the daemon last said: kept while it is away,
        # so "out of order" still says whom to call.
        self.help_info: dict[str, str] = {"phone": "", "text": ""}
        self.bank_layout: list[dict[str, Any]] = []  # the daemon's `layout`: the door picture
        self.site_locked = False
        self.technician: str | None = None
        self.last_input = clock()
        # One code screen and one door screen, reused: a keypress or an opened door
        # never waits on composing a screen.
        self.entry = CodeScreen()
        self.door = OpenScreen()
        self._outcomes: list[tuple[int, dict[str, Any]]] = []
        self._seq = 0
        self.link = DaemonLink(
            socket_path,
            on_up=lambda hello: self.post_message(DaemonUp(hello)),
            on_down=lambda: self.post_message(DaemonDown()),
            on_event=lambda event, data: self.post_message(DaemonEvent(event, data)),
            backoff_s=backoff_s,
        )

    # --- life ---------------------------------------------------------------

    def on_mount(self) -> None:
        self.title = self.texts.t("app.title")
        self.register_theme(CONTRAST)
        self.theme = CONTRAST.name
        self.install_screen(self.entry, "entry")
        self.install_screen(self.door, "door")
        self.push_screen(HomeScreen())
        self.run_worker(self.link.run(), name="daemon-link", group="link", exit_on_error=False)
        self.set_interval(1.0, self._idle_check)
        self.set_interval(self.status_s, self.poll_status)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self.last_input = self.clock()
            top = self.top
            for bar in top.query(TopBar) if top is not None else ():
                bar.set_countdown(None)  # a touch: the countdown goes, the visit stays
        await super().on_event(event)

    @property
    def lang(self) -> str:
        """The language shown now."""
        return self.texts.lang

    @property
    def top(self) -> Screen[Any] | None:
        """The screen on top, or None while the app starts or shuts down.

        Timers and the daemon link's messages can still run while Textual tears the
        screens down; `self.screen` raises then, `top` does not.
        """
        return self.screen_stack[-1] if self.screen_stack else None

    def _idle_check(self) -> None:
        screen = self.top
        idle = self.clock() - self.last_input >= self.idle_s
        if idle and isinstance(screen, HomeScreen) and self.lang != self.default_lang:
            self.set_language(self.default_lang)  # a visit that chose a language and left
            return
        home_soon = getattr(screen, "IDLE_HOME", False) and not getattr(screen, "busy", False)
        left = self.idle_s - (self.clock() - self.last_input)
        soon = max(1, int(left + 0.999)) if home_soon and left < COUNTDOWN_S else None
        for bar in screen.query(TopBar) if screen is not None else ():
            bar.set_countdown(soon)
        if not home_soon:
            return  # None (shutting down) has no IDLE_HOME
        if idle:
            self.go_home()

    # --- the daemon ---------------------------------------------------------

    def on_daemon_up(self, message: DaemonUp) -> None:
        if isinstance(self.top, UnreachableScreen):
            self.go_home()
        self.poll_status()
        self.fetch_help()

    def on_daemon_down(self, message: DaemonDown) -> None:
        self.technician, self.link.session = None, None
        self.show_unreachable()

    def on_daemon_event(self, message: DaemonEvent) -> None:
        if message.event == "door.outcome":
            self._seq += 1
            self._outcomes = [*self._outcomes[-_KEEP_OUTCOMES:], (self._seq, message.data)]
        for screen in self.screen_stack:
            if isinstance(screen, Relabels):
                try:
                    screen.daemon_event(message.event, message.data)
                except Exception:  # one screen's mistake must not stop the others' events
                    log.exception("screen %s failed on %s", screen, message.event)

    def outcome_mark(self) -> int:
        return self._seq

    def outcomes_since(self, mark: int) -> list[dict[str, Any]]:
        return [data for seq, data in self._outcomes if seq > mark]

    @work(exclusive=True, group="status")
    async def poll_status(self) -> None:
        """`status`: the offline badge (the configured cloud link is down; the bank still
        works), the paused notice."""
        try:
            status = await self.link.call("status")
        except (ApiError, DaemonUnreachable):
            return
        self.last_status = status
        cloud = bool(status.get("cloud"))
        self.online = bool(status.get("online")) if cloud else None
        down = status.get("offline_s")
        self.offline_s = int(down) if self.online is False and isinstance(down, int) else None
        self.site_locked = bool(status.get("site_locked"))
        for screen in self.screen_stack:
            if isinstance(screen, KioskScreen | KioskModal):
                screen.set_online(self.online)
            if isinstance(screen, HomeScreen):
                screen.set_paused(self.site_locked)

    @work(exclusive=True, group="help")
    async def fetch_help(self) -> None:
        """`help` and `layout`: whom to call (Help screen, door failures), and the bank's
        front for the picture shown with an open door."""
        try:
            answer = await self.link.call("help")
        except (ApiError, DaemonUnreachable):
            return
        self.help_info = {k: str(answer.get(k) or "") for k in ("phone", "text")}
        try:
            self.bank_layout = list((await self.link.call("layout")).get("cells") or [])
        except (ApiError, DaemonUnreachable):
            return
        for screen in self.screen_stack:
            if isinstance(screen, Relabels):
                screen.relabel()

    def action_help(self) -> None:
        """The Help screen on top of whatever shows now; its Back returns there."""
        if self.top is not None and not isinstance(self.top, HelpScreen):
            self.push_screen(HelpScreen())

    # --- moving between screens ---------------------------------------------

    def go_home(self) -> None:
        """The visit is over: home, in the site's language; a technician is logged out."""
        self._to_home()
        if self.lang != self.default_lang:
            self.set_language(self.default_lang)

    def _to_home(self) -> None:
        if self.technician is not None:
            self.logout()
        while len(self.screen_stack) > 1 and not isinstance(self.top, HomeScreen):
            self.pop_screen()

    def show(self, screen: KioskScreen) -> None:
        """Home, then `screen` on top of it: one state screen at a time (none at shutdown).

        The visit goes on: the language chosen stays."""
        if self.top is None:
            return
        self._to_home()
        self.push_screen(screen)

    def type_digit(self, digit: str) -> None:
        """A digit typed anywhere public: into the code being typed, or a new one."""
        if self.top is self.entry:
            self.entry.add(digit)
        else:
            self.start_entry(digit)

    def start_entry(self, digits: str = "") -> None:
        self.entry.reset(digits)
        self.show(self.entry)

    def show_open(self, result: dict[str, Any], since: int) -> None:
        self.door.load(result, since)
        if self.top is not self.door:
            self.show(self.door)

    def show_error(self, error: dict[str, Any], retry: bool = True) -> None:
        if error.get("code") == "locked_out":
            self.show(LockoutScreen(int(error.get("retry_after", 0) or 0)))
        else:
            self.show(ErrorScreen(error, retry=retry))

    def show_unreachable(self) -> None:
        if self.top is not None and not isinstance(self.top, UnreachableScreen):
            self.show(UnreachableScreen())

    # --- actions (keys and the top bar's buttons) ---------------------------

    def action_language(self) -> None:
        self.set_language(i18n.next_language(self.lang))

    def set_language(self, lang: str) -> None:
        """Show every screen in `lang` (until the visit ends)."""
        self.texts = i18n.Texts(lang)
        self.title = self.texts.t("app.title")
        for screen in self.screen_stack:
            if isinstance(screen, Relabels):
                screen.relabel()  # the reused code screen catches up when shown again

    def action_service(self) -> None:
        """The hidden way in (F2, "*" at home, the small Service button): the PIN modal."""
        top = self.top
        if top is None or isinstance(top, MaintenanceScreen | PinModal | UnreachableScreen):
            return
        self._to_home()
        self.push_screen(PinModal(), self._logged_in)

    def _logged_in(self, session: dict[str, Any] | None) -> None:
        if not session:
            return
        self.link.session = session["session"]
        self.technician = str(session["technician_id"])
        self.push_screen(MaintenanceScreen(self.technician))

    @work(group="logout")
    async def logout(self) -> None:
        self.technician = None
        try:
            await self.link.call("tech.logout")
        except (ApiError, DaemonUnreachable):
            pass
        finally:
            self.link.session = None
