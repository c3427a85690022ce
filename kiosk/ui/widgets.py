"""The keypad screen's building blocks: catalogue-backed texts and buttons, keypad, big label."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import events
from textual.app import App, ComposeResult
from textual.containers import Grid, Horizontal
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Static

from kiosk.ui.i18n import LANGUAGES, Texts, language_name

if TYPE_CHECKING:
    from kiosk.ui.host import KioskHost

#: What one typed digit looks like on the screen: a dot two rows tall (rows of the mask).
MASK = ("▟▙", "▜▛")
#: The longest code or PIN the keypad takes (codes and PINs are 6-10 digits).
MAX_DIGITS = 12


def texts_of(node: DOMNode) -> Texts:
    """The texts of the language the node's app shows now.

    A mounted node asks the app it is mounted in; one being made asks the active app.
    """
    host: DOMNode | None = node
    try:
        while host is not None and not isinstance(host, App):
            host = host.parent
    except AttributeError:  # still in its __init__: no parent yet
        host = None
    return cast("KioskHost", host if host is not None else node.app).texts


class TapFeedback:
    """Mixin: shows `-pressed` from the moment a finger (or the mouse) is down on the widget.

    A touch screen has no hover, so this is what says "got it". The mark stays at
    least FLASH_S after the finger lifts, so a quick tap is seen too.
    """

    FLASH_S = 0.15
    _unmark: Timer | None = None  # the pending end of the last tap's mark

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._keep_mark()  # a second tap within FLASH_S: the first one's end must not clear it
        cast(Widget, self).add_class("-pressed")

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._release()

    def on_leave(self, event: events.Leave) -> None:
        self._release()

    def _keep_mark(self) -> None:
        if self._unmark is not None:
            self._unmark.stop()
            self._unmark = None

    def _release(self) -> None:
        widget = cast(Widget, self)
        if widget.has_class("-pressed"):
            self._keep_mark()
            self._unmark = widget.set_timer(self.FLASH_S, lambda: widget.remove_class("-pressed"))


class Msg(Static):
    """A catalogue text: keeps its key and fields, and re-reads them on a language switch."""

    def __init__(self, key: str = "", *, id: str | None = None, classes: str = "", **fmt: Any):
        super().__init__(texts_of(self).t(key, **fmt) if key else "", id=id, classes=classes)
        self.key, self.fmt = key, fmt

    def say(self, key: str, **fmt: Any) -> None:
        """Show another catalogue text (an empty key clears the line)."""
        self.key, self.fmt = key, fmt
        self.relabel()

    def relabel(self) -> None:
        self.update(texts_of(self).t(self.key, **self.fmt) if self.key else "")


class TButton(TapFeedback, Button):
    """A button labelled from the catalogue; public screens' buttons never take focus.

    Focus stays with the screen, so Enter always means "OK" for the code being
    typed and never presses whichever button was touched last.
    """

    def __init__(self, key: str, *, id: str | None = None, classes: str = "", focus: bool = False):
        super().__init__(texts_of(self).t(key), id=id, classes=classes)
        self.key = key
        self.can_focus = focus

    def relabel(self) -> None:
        self.label = texts_of(self).t(self.key)


class Keypad(Grid):
    """0-9, ⌫ and OK as big keys; each tap goes up as `Keypad.Pressed`."""

    class Pressed(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key  # "0".."9", "back" or "ok"

    def compose(self) -> ComposeResult:
        for digit in "123456789":
            yield _Key(digit)
        yield _Key("back", "key.back")
        yield _Key("0")
        yield _Key("ok", "key.ok")


class _Key(TapFeedback, Static):
    """One keypad key. Not a Button: a Button ignores a second tap while it still shows the
    first (about 0.2 s), and a person typing "55" must get two fives."""

    def __init__(self, key: str, catalogue_key: str = "") -> None:
        label = texts_of(self).t(catalogue_key) if catalogue_key else key
        super().__init__(label, id=f"key-{key}", classes="key")
        self.key, self.catalogue_key = key, catalogue_key

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.add_class("-pressed")  # a click without a mouse-down (a scripted one) shows too
        self._release()
        self.post_message(Keypad.Pressed(self.key))

    def relabel(self) -> None:
        if self.catalogue_key:
            self.update(texts_of(self).t(self.catalogue_key))


class CodeDisplay(Static):
    """The digits typed so far, masked: one big dot (MASK) per digit, never the digit itself."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.digits = ""

    def set_digits(self, digits: str) -> None:
        self.digits = digits
        self.update(masked(len(digits)))


def masked(count: int) -> str:
    """What `count` typed digits look like: MASK's rows, a dot per digit."""
    return "\n".join(" ".join([row] * count) or " " for row in MASK)


class BigLabel(Horizontal):
    """A locker label in plain bold type on an amber plate three rows tall.

    Plain letters, exactly as printed on the door: drawn with box glyphs (Textual's
    Digits) "B-1" read as "8-1". The page makes the cell large (docs/ui.md).
    """

    def __init__(self, label: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id, classes="big-label")
        self.label = label

    def compose(self) -> ComposeResult:
        yield Static("", classes="big-text")

    def on_mount(self) -> None:
        self.show(self.label)

    def show(self, label: str) -> None:
        self.label = label
        try:
            text = self.query_one(".big-text", Static)
        except NoMatches:
            return  # not composed yet: on_mount shows self.label
        text.update(label)


class TopBar(Horizontal):
    """Title, the small "offline" badge, Help, the language switch and the service button."""

    def __init__(self, service: bool = True) -> None:
        super().__init__(classes="topbar")
        self.service = service

    def compose(self) -> ComposeResult:
        yield Msg("app.title", classes="apptitle")
        yield Msg("app.offline", id="offline", classes="badge offline")
        yield Msg("", id="countdown-idle", classes="badge idle-countdown")
        yield TButton("app.help", id="help", classes="small")
        yield TButton("app.language", id="language", classes="small")
        if self.service:
            yield TButton("app.service", id="service", classes="small")

    def set_countdown(self, seconds: int | None) -> None:
        """The idle return home in `seconds` (None: no countdown shown)."""
        self.set_class(seconds is not None, "counting")  # the badge takes the title's place
        for badge in self.query("#countdown-idle").results(Msg):
            badge.display = seconds is not None
            if seconds is not None:
                badge.say("app.idle_home", seconds=seconds)

    def on_mount(self) -> None:
        self.set_countdown(None)

    def set_online(self, online: bool, down_s: int | None = None) -> None:
        """Hide the badge (`online`), or show it with how long the link has been down."""
        self.set_class(online, "online")
        for badge in self.query("#offline").results(Msg):
            if online or down_s is None:
                badge.say("app.offline")
            elif down_s < 60:
                badge.say("app.offline_s", seconds=down_s)
            else:
                badge.say("app.offline_min", minutes=down_s // 60)


class LanguageButton(TapFeedback, Button):
    """One language of the chooser, named in itself; shows the finger on it like every target."""

    def __init__(self, lang: str) -> None:
        super().__init__(language_name(lang), id=f"lang-{lang}", classes="lang")
        self.can_focus = False


class LanguageChooser(Horizontal):
    """One button per language, each named in itself ("English", "Deutsch")."""

    def compose(self) -> ComposeResult:
        for lang in LANGUAGES:
            yield LanguageButton(lang)

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        """Mark the language shown now."""
        current = texts_of(self).lang
        for button in self.query(Button):
            button.set_class(button.id == f"lang-{current}", "-current")


class HelpLine(Static):
    """Whom to call ([site] help_phone and help_text), or what to do when none is set."""

    def __init__(self, *, id: str | None = None, classes: str = "") -> None:
        super().__init__("", id=id, classes=classes)

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        info = cast("KioskHost", self.app).help_info
        texts = texts_of(self)
        phone, text = info.get("phone", ""), info.get("text", "")
        lines = [texts.t("support.call", phone=phone) if phone else texts.t("support.none")]
        if text:
            lines.append(text)
        self.update("\n".join(lines))
