"""Help, one tap away: whom to call ([site] help_phone, help_text) and the way back."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button

from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.widgets import HelpLine, Msg, TButton, TopBar


class HelpScreen(KioskScreen):
    """Pushed over any public screen (the top bar's Help); Back pops it, idle goes home."""

    def compose(self) -> ComposeResult:
        yield TopBar(service=False)
        with Vertical(classes="notice-body"):
            yield Msg("support.title", classes="headline")
            yield HelpLine(id="help-line", classes="help-line")
            yield Msg("support.body", classes="hint")
            with Horizontal(classes="actions"):
                yield TButton("support.back", id="help-back", classes="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "help-back":
            event.stop()
            self.dismiss()
        elif event.button.id != "help":
            super().on_button_pressed(event)
        else:
            event.stop()

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.key in ("escape", "enter"):
            event.stop()
            self.dismiss()
