"""Screens that say why not: an error with what to do, the lockout countdown, "out of order"."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Center, Horizontal, Vertical
from textual.widgets import Button, Digits

from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.widgets import HelpLine, Msg, TButton, TopBar, texts_of

#: Errors after which typing the code again can help.
RETRYABLE = {"invalid_code", "bad_request", "invalid_state", "hardware_error"}
#: Errors that come with a second line of help (catalogue key `help.<code>`): what to do now.
HELPED = {"door_state_unknown"}
#: A door failed or its state is unknown: whom to call shows right here, too.
DOOR_TROUBLE = {"door_jammed", "door_state_unknown", "hardware_error"}


class _Translated(Msg):
    """An error text that is re-made from the error dict on a language switch."""

    def __init__(self, error: dict[str, Any], **kw: Any) -> None:
        super().__init__("", **kw)
        self.error = error
        self.relabel()

    def relabel(self) -> None:
        self.update(texts_of(self).error_text(self.error))


class ErrorScreen(KioskScreen):
    """The daemon said no: its reason in the person's language, and what they can do now."""

    def __init__(self, error: dict[str, Any], retry: bool = True) -> None:
        super().__init__(classes="notice")
        self.error = error
        self.code = str(error.get("code", ""))
        self.retry = retry and self.code in RETRYABLE

    def compose(self) -> ComposeResult:
        yield TopBar()
        with Vertical(classes="notice-body"):
            yield Msg("error.title", classes="headline")
            yield _Translated(self.error, id="reason", classes="reason")
            if self.code in HELPED:
                yield Msg(f"help.{self.code}", id="help-hint", classes="hint")
            if self.code in DOOR_TROUBLE:
                yield HelpLine(id="help-line", classes="help-line")
            with Horizontal(classes="actions"):
                if self.retry:
                    yield TButton("error.try_again", id="retry", classes="primary")
                yield TButton("error.back", id="back")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "retry":
            event.stop()
            self.kiosk.start_entry()
        elif event.button.id == "back":
            event.stop()
            self.kiosk.go_home()

    def on_key(self, event: Any) -> None:
        if self.handed_over(event):
            return
        digit = self.digit_of(event)
        if digit is not None and self.code != "site_locked":
            event.stop()
            self.kiosk.type_digit(digit)
        elif event.key in ("enter", "escape"):
            event.stop()
            self.kiosk.go_home()


class LockoutScreen(KioskScreen):
    """Too many wrong codes: a countdown (m:ss) until entry opens again, then home."""

    IDLE_HOME = False

    def __init__(self, seconds: int) -> None:
        super().__init__(classes="notice")
        self.seconds = max(0, int(seconds))
        self.deadline = 0.0

    def compose(self) -> ComposeResult:
        yield TopBar(service=True)
        with Vertical(classes="notice-body"):
            yield Msg("lockout.title", classes="headline")
            yield Msg("lockout.body", classes="reason")
            with Center():
                yield Digits(self._text(self.seconds), id="countdown", classes="big")

    def on_mount(self) -> None:
        self.deadline = self.kiosk.clock() + self.seconds
        self.set_interval(0.25, self._tick)

    @staticmethod
    def _text(seconds: int) -> str:
        return f"{seconds // 60}:{seconds % 60:02d}"

    @property
    def left(self) -> int:
        return max(0, int(self.deadline - self.kiosk.clock() + 0.999))

    def _tick(self) -> None:
        left = self.left
        self.query_one("#countdown", Digits).update(self._text(left))
        if left <= 0:
            self.kiosk.go_home()


class UnreachableScreen(KioskScreen):
    """No daemon answers: out of order, while the link reconnects by itself."""

    IDLE_HOME = False

    def compose(self) -> ComposeResult:
        yield TopBar(service=False)
        with Vertical(classes="notice-body"):
            yield Msg("unreachable.title", classes="headline")
            yield Msg("unreachable.body", classes="reason")
            yield Msg("unreachable.retrying", classes="hint")
