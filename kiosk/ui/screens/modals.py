"""Modal screens: a technician's PIN, the reason for an action, and a flagged locker's check.

Each works by touch alone: the PIN on the on-screen keypad, the reason and what a check
found as big buttons of the usual words (PHRASES), which a keyboard's text can add to.
"""

from __future__ import annotations

from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input

from kiosk.ui.link import ApiError, DaemonUnreachable
from kiosk.ui.screens.base import KioskModal
from kiosk.ui.widgets import MAX_DIGITS, CodeDisplay, Keypad, Msg, TButton, texts_of

#: The usual words of each modal, by catalogue key: one tap each (reason.<name>, check.<name>).
PHRASES = {
    "tech.open": (
        "inspection",
        "cleaning",
        "customer_asked",
        "lock_sticks",
        "parcel_stuck",
        "misc",
    ),
    "tech.out": ("lock_sticks", "door_damaged", "sensor_fault", "cleaning", "inspection", "misc"),
    "tech.in": ("fixed", "cleaned", "inspected", "lock_replaced", "sensor_replaced", "misc"),
    "tech.check": (
        "parcel_seen",
        "label_readable",
        "compartment_empty",
        "door_was_open",
        "door_was_shut",
        "damage_seen",
    ),
}
#: Between the phrases of one answer ("Inspection, Cleaning").
JOIN = ", "


class _PinError(Msg):
    def __init__(self) -> None:
        super().__init__("", id="pin-error", classes="warning")
        self.error: dict[str, Any] | None = None

    def show(self, error: dict[str, Any] | None) -> None:
        self.error = error
        self.relabel()

    def relabel(self) -> None:
        self.update(texts_of(self).error_text(self.error, pin=True) if self.error else "")


class PinModal(KioskModal):
    """A PIN typed on the keypad, masked; dismisses with the tech.login result, or None."""

    TAKES_KEYS = True

    def __init__(self) -> None:
        super().__init__()
        self.digits = ""
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog pin"):
            yield Msg("pin.title", classes="headline")
            with Horizontal():
                with Vertical(classes="side"):
                    yield Msg("pin.prompt", classes="prompt")
                    yield CodeDisplay(id="pin")
                    yield _PinError()
                    yield TButton("pin.cancel", id="pin-cancel")
                yield Keypad()

    def _show(self) -> None:
        for display in self.query(CodeDisplay):  # none yet while keys outrun the mount
            display.set_digits(self.digits)

    def on_key(self, event: events.Key) -> None:
        self.key(event)

    def key(self, event: events.Key) -> None:
        char = event.character or ""
        if len(char) == 1 and char.isascii() and char.isdigit():
            self.press(char)
        elif event.key == "backspace":
            self.press("back")
        elif event.key == "enter":
            self.press("ok")
        elif event.key == "escape":
            self.dismiss(None)
        else:
            return
        event.stop()

    def on_keypad_pressed(self, message: Keypad.Pressed) -> None:
        self.press(message.key)

    def press(self, key: str) -> None:
        if self.busy:
            return
        if key == "ok":
            if self.digits:
                self.busy = True
                self._login(self.digits)
            return
        self.digits = self.digits[:-1] if key == "back" else (self.digits + key)[:MAX_DIGITS]
        self._show()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "pin-cancel":
            event.stop()
            self.dismiss(None)

    @work(exclusive=True, group="login")
    async def _login(self, pin: str) -> None:
        try:
            session = await self.kiosk.link.call("tech.login", pin=pin)
        except ApiError as exc:
            if not self.is_attached:
                return  # cancelled meanwhile
            self.digits, self.busy = "", False
            self._show()
            self.query_one(_PinError).show(exc.error)
            return
        except DaemonUnreachable:
            self.kiosk.show_unreachable()
            return
        if self.is_attached:
            self.dismiss(session)
        else:  # cancelled meanwhile: do not leave a session open
            self.kiosk.link.session = session.get("session")
            self.kiosk.logout()


class Phrases(Grid):
    """The usual words of an answer as big buttons; a tap adds its words, a second takes them
    back (`Phrases.Toggled` goes up). A chosen one stays marked (`-current`)."""

    class Toggled(Message):
        def __init__(self, text: str, chosen: bool) -> None:
            super().__init__()
            self.text, self.chosen = text, chosen

    def __init__(self, section: str, names: tuple[str, ...]) -> None:
        super().__init__(classes="phrases")
        self.keys = [f"{section}.{name}" for name in names]

    def compose(self) -> ComposeResult:
        for key in self.keys:
            # Never focused: a USB keyboard's typing stays in the text field.
            yield TButton(key, id=f"phrase-{key.rpartition('.')[2]}", classes="phrase")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button
        button.toggle_class("-current")
        self.post_message(self.Toggled(str(button.label), button.has_class("-current")))

    def mark(self, text: str) -> None:
        """Mark the phrases that `text` (the field, as typed or tapped) holds now."""
        held = {part.strip().casefold() for part in text.split(JOIN.strip())}
        for button in self.query(Button):
            button.set_class(str(button.label).casefold() in held, "-current")


def toggled(text: str, phrase: str, chosen: bool) -> str:
    """The field's `text` with `phrase` added at its end (`chosen`) or taken out."""
    parts = [part.strip() for part in text.split(JOIN.strip()) if part.strip()]
    parts = [part for part in parts if part.casefold() != phrase.casefold()]
    if chosen:
        parts.append(phrase)
    return JOIN.join(parts)


class ReasonModal(KioskModal):
    """Why a technician opens a door or moves a locker in or out of service; dismisses the text.

    A tap on one of the usual reasons (PHRASES) puts it in the field, OK gives it; a
    keyboard types in the same field.
    """

    def __init__(self, action_key: str, locker: str) -> None:
        super().__init__()
        self.action_key, self.locker = action_key, locker

    def on_phrases_toggled(self, event: Phrases.Toggled) -> None:
        event.stop()
        field = self.query_one(Input)
        field.value = toggled(field.value, event.text, event.chosen)[: field.max_length]

    def on_input_changed(self, event: Input.Changed) -> None:
        for phrases in self.query(Phrases):
            phrases.mark(event.value)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog reason"):
            yield Msg("reason.title", action=self.t(self.action_key), locker=self.locker)
            yield Input(placeholder=self.t("reason.placeholder"), max_length=200, id="reason-text")
            yield Phrases("reason", PHRASES[self.action_key])
            yield Msg("", id="reason-hint", classes="warning")
            with Horizontal(classes="actions"):
                yield TButton("reason.ok", id="reason-ok", classes="primary", focus=True)
                yield TButton("reason.cancel", id="reason-cancel", focus=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _done(self) -> None:
        text = self.query_one(Input).value.strip()
        if text:
            self.dismiss(text)
        else:  # every action is audited with its reason
            self.query_one("#reason-hint", Msg).say("reason.need_words")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._done()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "reason-ok":
            self._done()
        else:
            self.dismiss(None)

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            event.stop()
            self.dismiss(None)


class CheckModal(ReasonModal):
    """A flagged locker, looked into: dismisses (parcel inside?, what was seen), or None.

    The flag follows a door operation the daemon could not see finish (a crash,
    a door left open); the answer settles it (`locker.check`, `kiosk check`).
    """

    def __init__(self, locker: str) -> None:
        super().__init__("tech.check", locker)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog reason"):
            yield Msg("check.title", locker=self.locker)
            yield Input(placeholder=self.t("check.placeholder"), max_length=200, id="reason-text")
            yield Phrases("check", PHRASES["tech.check"])
            yield Msg("", id="check-hint", classes="warning")
            with Horizontal(classes="actions"):
                yield TButton("check.inside", id="check-inside", classes="primary", focus=True)
                yield TButton("check.empty", id="check-empty", focus=True)
                yield TButton("reason.cancel", id="reason-cancel", focus=True)

    def _found(self, inside: bool) -> None:
        field = self.query_one(Input)
        text = field.value.strip()
        if text:
            self.dismiss((inside, text))
        else:  # every check is audited with what was seen
            self.query_one("#check-hint", Msg).say("check.need_words")
            field.focus()

    # Textual runs a handler of each class in the MRO: prevent_default() keeps
    # ReasonModal's (which dismisses with bare text) from running after these.

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # two answers: Enter alone cannot say which
        event.prevent_default()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        event.prevent_default()
        if event.button.id in ("check-inside", "check-empty"):
            self._found(event.button.id == "check-inside")
        else:
            self.dismiss(None)
