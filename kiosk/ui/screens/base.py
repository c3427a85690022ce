"""What every keypad screen shares: the top bar's buttons, language relabelling, daemon events."""

from __future__ import annotations

from typing import Any, cast

from textual import events
from textual.screen import ModalScreen, Screen
from textual.widgets import Button

from kiosk.ui.host import KioskHost
from kiosk.ui.widgets import TopBar


class Relabels:
    """Mixin: re-read every catalogue text on the screen after a language switch."""

    def relabel(self) -> None:
        self.lang = self.kiosk.lang
        for widget in cast(Screen, self).query("*"):
            relabel = getattr(widget, "relabel", None)
            if callable(relabel):
                relabel()

    @property
    def kiosk(self) -> KioskHost:
        """The app showing this screen, as screens see it."""
        return cast(KioskHost, cast(Screen, self).app)

    def t(self, key: str, **fmt: Any) -> str:
        """The app's current language's text for `key`."""
        return self.kiosk.texts.t(key, **fmt)

    def error_text(self, error: dict[str, Any]) -> str:
        """A daemon error in the app's current language."""
        return self.kiosk.texts.error_text(error)

    def daemon_event(self, event: str, data: dict[str, Any]) -> None:
        """A daemon event (door.outcome, door.alert, ledger.event); most screens ignore it."""


class KioskScreen(Relabels, Screen[None]):
    """A full screen of the public keypad."""

    #: The idle timeout takes this screen back home.
    IDLE_HOME = True

    def on_mount(self) -> None:
        self.set_online(self.kiosk.online)
        self.lang = self.kiosk.lang

    def on_screen_resume(self) -> None:
        """Shown again (a reused screen): catch up with the badge and the language."""
        self.set_online(self.kiosk.online)
        if getattr(self, "lang", self.kiosk.lang) != self.kiosk.lang:
            self.relabel()

    def set_online(self, online: bool | None) -> None:
        for bar in self.query(TopBar):
            bar.set_online(online is not False, self.kiosk.offline_s)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "language":
            event.stop()
            self.kiosk.action_language()
        elif event.button.id == "service":
            event.stop()
            self.kiosk.action_service()
        elif event.button.id == "help":
            event.stop()
            self.kiosk.action_help()
        elif (event.button.id or "").startswith("lang-"):
            event.stop()
            self.kiosk.set_language(event.button.id.removeprefix("lang-"))

    def handed_over(self, event: events.Key) -> bool:
        """Pass on a key that reached this screen after it handed over to an entry screen.

        A USB scanner types a whole code and Enter in one burst: the app forwards
        every key to the screen current at that moment, so keys typed after the
        first digit can still arrive here once code entry (or the PIN modal) is on top.
        """
        target = self.kiosk.top
        if target is self or not getattr(target, "TAKES_KEYS", False):
            return False
        event.stop()
        target.key(event)  # type: ignore[attr-defined]
        return True

    def pressed_over(self, key: str) -> bool:
        """The same for a keypad button tapped while the next screen was being pushed."""
        target = self.kiosk.top
        if target is self or not getattr(target, "TAKES_KEYS", False):
            return False
        target.press(key)  # type: ignore[attr-defined]
        return True

    @staticmethod
    def digit_of(event: events.Key) -> str | None:
        """The digit a key typed (main keys, keypad, or a USB scanner), else None."""
        char = event.character or ""
        return char if len(char) == 1 and char.isascii() and char.isdigit() else None


class KioskModal(Relabels, ModalScreen[Any]):
    """A modal of the keypad screen (the technician's PIN, a reason)."""

    IDLE_HOME = True

    def set_online(self, online: bool | None) -> None:
        """Modals carry no badge."""
