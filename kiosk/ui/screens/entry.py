"""Home and code entry: any digit typed at home (keys, keypad, scanner, buttons) starts a code."""

from __future__ import annotations

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from kiosk.ui.link import ApiError, DaemonUnreachable
from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.widgets import MAX_DIGITS, CodeDisplay, Keypad, LanguageChooser, Msg, TopBar


class HomeScreen(KioskScreen):
    """The welcome: what to do, a keypad, and (in `kiosk demo`) the sample codes."""

    IDLE_HOME = False

    def compose(self) -> ComposeResult:
        yield TopBar()
        with Horizontal(classes="body"):
            with Vertical(classes="side"):
                yield Msg("home.welcome", classes="headline")
                yield Msg("home.prompt", classes="prompt")
                yield Msg("home.who", classes="hint")
                yield LanguageChooser(classes="languages")
                yield Msg("home.paused", id="paused", classes="warning")
                demo = self.kiosk.demo_codes
                if demo:
                    yield Msg("home.demo", classes="demo")
                    for parcel, delivery, pickup in demo:
                        yield Msg(
                            "home.demo_line",
                            classes="demo",
                            parcel=parcel,
                            delivery=delivery,
                            pickup=pickup,
                        )
                if self.kiosk.demo_pin:
                    yield Msg("home.demo_pin", classes="demo", pin=self.kiosk.demo_pin)
            yield Keypad()

    def on_mount(self) -> None:
        self.set_paused(self.kiosk.site_locked)

    def set_paused(self, paused: bool) -> None:
        for notice in self.query("#paused"):  # none yet while the screen is being built
            notice.display = paused

    def on_key(self, event: events.Key) -> None:
        if self.handed_over(event):
            return
        digit = self.digit_of(event)
        if digit is not None:
            event.stop()
            self.kiosk.type_digit(digit)
        elif event.character == "*":
            event.stop()
            self.kiosk.action_service()

    def on_keypad_pressed(self, message: Keypad.Pressed) -> None:
        if self.pressed_over(message.key):
            return
        if message.key.isdigit():
            self.kiosk.type_digit(message.key)


class CodeScreen(KioskScreen):
    """A code being typed, masked; OK or Enter sends it to the daemon exactly as typed."""

    TAKES_KEYS = True

    def __init__(self, digits: str = "") -> None:
        super().__init__()
        self.digits = digits
        self.busy = False
        self._submit_on_mount = False  # Enter came (a fast scanner) before the screen was built

    def compose(self) -> ComposeResult:
        yield TopBar()
        with Horizontal(classes="body"):
            with Vertical(classes="side"):
                yield Msg("entry.title", classes="headline")
                yield CodeDisplay(id="code")
                yield Msg("entry.prompt", classes="prompt")
                yield Msg("", id="busy", classes="busy")
            yield Keypad()

    def on_mount(self) -> None:
        self._show()
        if self._submit_on_mount:
            self.submit()

    def reset(self, digits: str = "") -> None:
        """Ready for a new code (the app reuses one code screen: no re-compose per code)."""
        self.digits, self.busy, self._submit_on_mount = digits, False, False
        for busy in self.query("#busy").results(Msg):
            busy.say("")
        self._show()

    def _show(self) -> None:
        for display in self.query(CodeDisplay):  # none yet while keys outrun the mount
            display.set_digits(self.digits)

    def add(self, digit: str) -> None:
        if not self.busy and len(self.digits) < MAX_DIGITS:
            self.digits += digit
            self._show()

    def back(self) -> None:
        if not self.busy:
            self.digits = self.digits[:-1]
            self._show()

    def on_key(self, event: events.Key) -> None:
        self.key(event)

    def key(self, event: events.Key) -> None:
        digit = self.digit_of(event)
        if digit is not None:
            self.add(digit)
        elif event.key == "backspace":
            self.back()
        elif event.key == "enter":
            self.submit()
        elif event.key == "escape":
            if not self.busy:  # a door may be opening: its screen must come
                self.kiosk.go_home()
        else:
            return
        event.stop()

    def on_keypad_pressed(self, message: Keypad.Pressed) -> None:
        self.press(message.key)

    def press(self, key: str) -> None:
        """One keypad key: a digit, "back" or "ok"."""
        if key == "back":
            self.back()
        elif key == "ok":
            self.submit()
        else:
            self.add(key)

    def submit(self) -> None:
        if self.busy or not self.digits:
            return
        if not self.query("#busy"):
            self._submit_on_mount = True
            return
        self.busy = True
        self.query_one("#busy", Msg).say("entry.checking")
        self._submit(self.digits)

    @work(group="submit")
    async def _submit(self, code: str) -> None:
        """code.submit: a door opens (result screen) or the daemon says why not (error screen)."""
        kiosk = self.kiosk
        mark = kiosk.outcome_mark()
        try:
            result = await kiosk.link.call("code.submit", code=code)
        except ApiError as exc:
            kiosk.show_error(exc.error)
        except DaemonUnreachable:
            kiosk.show_unreachable()
        else:
            kiosk.show_open(result, since=mark)
