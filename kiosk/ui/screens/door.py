"""A door is open: the locker in large type, what to do, and the courier's choices."""

from __future__ import annotations

from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button

from kiosk.ui.link import ApiError, DaemonUnreachable
from kiosk.ui.picture import BankPicture
from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.widgets import BigLabel, Msg, TButton, TopBar

#: What the screen says once the daemon reports the door shut, by DoorOutcome.result.
_DONE_TEXT = {
    "delivered": "open.delivered",
    "picked_up": "open.picked_up",
    "returned": "open.returned",
    "released": "open.released",
    "closed": "open.closed",
    "not_delivered": "open.not_delivered",
    "not_picked_up": "open.not_picked_up",
}
#: A closing the presence sensor refused: the door is open again, the screen says why.
_REOPENED_TEXT = {"empty": "open.put_parcel_in", "still_inside": "open.take_parcel"}


class OpenScreen(KioskScreen):
    """Locker X is open for a courier, customer, collector or technician.

    A courier may press "Doesn't fit" (the daemon opens the next size up once
    this door is shut) or "Cancel"; after a delivery's door.outcome the screen
    offers "Next parcel", and typing digits starts the next code right here.
    The app keeps one of these and `load`s each door into it: showing a door
    never waits on composing a screen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.result: dict[str, Any] = {}
        self.since = 0  # outcomes the app saw after this mark may concern this door
        self.locker = ""
        self.role = "customer"
        self.finished: str | None = None  # the DoorOutcome.result once the door is shut
        self.choice: str | None = None  # "doesnt_fit" | "cancel" while waiting for the door
        self.visit = 0  # counts loads, so a timer of an earlier door cannot act on this one
        self.token = ""  # the daemon's visit token: this visit's right to reopen or report
        self.used: set[str] = set()  # what the visit has asked already (each once)
        self.left_window = False  # "I left something" still possible (after a pickup)

    @property
    def IDLE_HOME(self) -> bool:  # type: ignore[override]
        return self.choice is None

    def compose(self) -> ComposeResult:
        yield TopBar()
        with Vertical(classes="door"):
            with Horizontal(classes="door-head"):
                yield Msg("open.title", classes="door-title")
                yield BigLabel(id="label")
            yield Msg("", id="what", classes="what")
            yield BankPicture(id="picture", classes="picture")
            yield Msg("", id="prompt", classes="warning")
            with Horizontal(classes="actions"):
                yield TButton("open.doesnt_fit", id="doesnt-fit")
                yield TButton("open.cancel", id="cancel")
                yield TButton("open.next", id="next", classes="primary")
                yield TButton("open.done", id="done")
                yield TButton("open.didnt_open", id="reopen")
                yield TButton("open.report", id="report")
                yield TButton("open.left_something", id="left")

    def load(self, result: dict[str, Any], since: int) -> None:
        """Show this door (a CodeResult dict); outcomes after `since` may have shut it already."""
        self.result, self.since, self.visit = result, since, self.visit + 1
        self.locker = str(result.get("locker", ""))
        self.role = str(result.get("role", "customer"))
        self.finished = self.choice = None
        self.left_window = False
        if result.get("visit"):  # a new visit (a reopen's answer keeps the one it had)
            self.token, self.used = str(result["visit"]), set()
        if self.query("#what"):
            self._apply()

    def on_mount(self) -> None:
        self._apply()

    def _apply(self) -> None:
        if not self.query(BigLabel):  # not composed, or torn down as the app exits
            return
        for role in ("courier", "customer", "collector", "technician"):
            self.set_class(role == self.role, f"role-{role}")
        self.query_one(BigLabel).show(self.locker)
        self.query_one(BankPicture).show(self.kiosk.bank_layout, self.locker)
        self.query_one("#what", Msg).say(f"open.{self.role}", locker=self.locker)
        self._prompt("")
        self._buttons()
        for data in self.kiosk.outcomes_since(self.since):
            self.daemon_event("door.outcome", data)

    def _prompt(self, key: str, **fmt: Any) -> None:
        """The warning under the picture; none takes no room (the picture gets it)."""
        prompt = self.query_one("#prompt", Msg)
        prompt.say(key, **fmt)
        prompt.display = bool(key)

    def _buttons(self) -> None:
        courier = self.role == "courier"
        waiting = self.choice is not None
        for button_id, show in (
            ("#doesnt-fit", courier and self.finished is None and not waiting),
            ("#cancel", courier and self.finished is None and not waiting),
            ("#next", courier and self.finished == "delivered"),
            ("#done", not courier or self.finished is not None),
            ("#reopen", self._after("didnt_open") and "didnt_open" not in self.used),
            ("#report", self._after("report") and "didnt_open" in self.used),
            ("#left", self.left_window and self._after("left_something")),
        ):
            self.query_one(button_id).display = show

    def _after(self, what: str) -> bool:
        """The door shut after a delivery or pickup, and the visit has not asked `what` yet."""
        done = self.finished in ("delivered", "picked_up", "closed")  # closed: after a reopen
        return done and bool(self.token) and what not in self.used

    def daemon_event(self, event: str, data: dict[str, Any]) -> None:
        if data.get("locker", data.get("label")) != self.locker or not self.query("#what"):
            return  # another door, or not built yet (on_mount reads what it missed)
        if event == "door.alert" and data.get("kind") == "left_open" and self.finished is None:
            self._prompt("open.close_door", locker=self.locker)
        elif event == "door.outcome" and self.finished is None:
            self._finish(data)

    def _finish(self, outcome: dict[str, Any]) -> None:
        kiosk = self.kiosk
        nxt, error = outcome.get("next"), outcome.get("error")
        if nxt:  # "doesn't fit": the next size up is already open
            kiosk.show_open(nxt, since=kiosk.outcome_mark())
            return
        if error:
            kiosk.show_error(error, retry=False)
            return
        result = str(outcome.get("result", "closed"))
        if result in _REOPENED_TEXT:  # reopened once; its next closing arrives later
            self._prompt(_REOPENED_TEXT[result], locker=self.locker)
            return
        if self.choice == "cancel" or result == "released":
            kiosk.go_home()
            return
        self.finished = result
        self._prompt("")
        self.query_one("#what", Msg).say(_DONE_TEXT.get(result, "open.closed"), locker=self.locker)
        if result == "delivered":
            self._prompt("open.next_hint")
        else:
            visit, wait = self.visit, kiosk.thanks_s
            if result in ("picked_up", "closed") and self.token:  # time to come back to it
                self.left_window, wait = result == "picked_up", max(wait, kiosk.reopen_s)
            self.set_timer(wait, lambda: self._thanks_over(visit))
        self._buttons()

    def _thanks_over(self, visit: int) -> None:
        if self.visit == visit and self.kiosk.top is self:
            self.kiosk.go_home()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id
        if button_id in ("doesnt-fit", "cancel"):
            event.stop()
            self._choose("doesnt_fit" if button_id == "doesnt-fit" else "cancel")
        elif button_id == "next":
            event.stop()
            self.kiosk.start_entry()
        elif button_id == "done":
            event.stop()
            self.kiosk.go_home()
        elif button_id in ("reopen", "left", "report"):
            event.stop()
            what = {"reopen": "didnt_open", "left": "left_something"}.get(button_id, "report")
            if what in self.used:
                return
            self.used.add(what)
            self.query_one("#what", Msg).say("open.wait_reopen", locker=self.locker)
            self._aftercare(what)

    def on_key(self, event: events.Key) -> None:
        if self.handed_over(event):
            return
        digit = self.digit_of(event)
        if digit is not None and self.finished is not None:
            event.stop()
            self.kiosk.type_digit(digit)

    def _choose(self, choice: str) -> None:
        if self.choice is not None or self.finished is not None:
            return
        self.choice = choice
        key = "open.doesnt_fit_wait" if choice == "doesnt_fit" else "open.cancel_wait"
        self.query_one("#what", Msg).say(key, locker=self.locker)
        self._buttons()
        self._send_choice(choice)

    @work(group="choice")
    async def _send_choice(self, choice: str) -> None:
        """courier.doesnt_fit / courier.cancel; the door's closing then arrives as door.outcome."""
        call = "courier.doesnt_fit" if choice == "doesnt_fit" else "courier.cancel"
        visit = self.visit
        try:
            outcome = await self.kiosk.link.call(call, locker=self.locker)
        except ApiError as exc:
            self.kiosk.show_error(exc.error, retry=False)
            return
        except DaemonUnreachable:
            self.kiosk.show_unreachable()
            return
        if visit != self.visit:
            return  # the screen shows another door by now
        if outcome.get("result") != "awaiting_close" and self.finished is None:
            self._finish(outcome)  # the door was shut already: decided at once

    @work(group="aftercare")
    async def _aftercare(self, what: str) -> None:
        """door.reopen (the same door again) or door.report (a technician; a courier's
        parcel gets another locker, already open)."""
        kiosk, label, token = self.kiosk, self.locker, self.token
        try:
            if what == "report":
                answer = await kiosk.link.call("door.report", visit=token)
            else:
                answer = await kiosk.link.call("door.reopen", visit=token, why=what)
        except ApiError as exc:
            kiosk.show_error(exc.error, retry=False)
            return
        except DaemonUnreachable:
            kiosk.show_unreachable()
            return
        if what != "report":
            kiosk.show_open(answer, since=kiosk.outcome_mark())
        elif answer.get("next"):
            kiosk.show_open(answer["next"], since=kiosk.outcome_mark())
        else:
            self.finished = "reported"
            self.query_one("#what", Msg).say("open.reported", locker=label)
            self._prompt("")
            self._buttons()
