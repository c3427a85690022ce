"""What a keypad screen needs from the app that shows it: the screens' side of the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from textual.screen import Screen

from kiosk.ui.i18n import Texts
from kiosk.ui.link import DaemonLink


class KioskHost(Protocol):
    """The keypad app as its screens and widgets see it (KioskApp implements it).

    Screens reach the app only through this, so they never import the app module.
    """

    @property
    def lang(self) -> str:
        """The language shown now (the app's state)."""
        ...

    @property
    def texts(self) -> Texts:
        """The current language's texts."""
        ...

    online: bool | None
    offline_s: int | None
    site_locked: bool
    clock: Callable[[], float]
    thanks_s: float
    reopen_s: float
    demo_codes: tuple[tuple[str, str, str], ...]
    demo_pin: str
    help_info: dict[str, str]
    bank_layout: list[dict[str, Any]]
    link: DaemonLink

    @property
    def top(self) -> Screen[Any] | None: ...

    def go_home(self) -> None: ...
    def type_digit(self, digit: str) -> None: ...
    def start_entry(self, digits: str = "") -> None: ...
    def show_open(self, result: dict[str, Any], since: int) -> None: ...
    def show_error(self, error: dict[str, Any], retry: bool = True) -> None: ...
    def show_unreachable(self) -> None: ...
    def outcome_mark(self) -> int: ...
    def outcomes_since(self, mark: int) -> list[dict[str, Any]]: ...
    def action_language(self) -> None: ...
    def set_language(self, lang: str) -> None: ...
    def action_service(self) -> None: ...
    def action_help(self) -> None: ...
    def logout(self) -> Any: ...
