"""Mapping a new bank from the maintenance screen: open each channel, name its door, get the TOML.

The same API calls as `kiosk hardware map`: `hardware.map_open` (the daemon
audits and pulses each channel) and `hardware.map_entries` (it checks the
answers against the config and renders the [[board]] / [[locker]] entries).
The screen holds no files: it shows the entries for the technician to add to
the config (or to write with `kiosk hardware map --out FILE` at the terminal).
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from kiosk.ui.link import ApiError, DaemonUnreachable
from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.widgets import Msg, TButton

PROFILE = "kiosk-v1"
#: Input type of the unit, column and row fields (digits only).
NUMBER = "integer"


class CommissionScreen(KioskScreen):
    """One board at a time: bus and unit, then each channel in turn from 0 up."""

    IDLE_HOME = False  # a technician standing at an open door is not idle

    def __init__(self) -> None:
        super().__init__(classes="maintenance commission")
        self.bus = ""
        self.unit = 0
        self.channel = 0
        self.channels = 1
        self.lockers: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Msg("map.title", classes="apptitle")
            with Horizontal(classes="map-row"):
                yield Input(placeholder=self.t("map.bus"), id="map-bus")
                yield Input(placeholder=self.t("map.unit"), id="map-unit", type=NUMBER)
                yield TButton("map.start", id="map-start", classes="compact", focus=True)
            yield Msg("", id="map-door", classes="reason")
            yield Static("", id="map-error", classes="warning")
            with Horizontal(classes="map-row"):
                yield Input(placeholder=self.t("map.label"), id="map-label", max_length=16)
                yield Input(placeholder=self.t("map.size"), id="map-size", max_length=1)
                yield Input(placeholder=self.t("map.column"), id="map-column", type=NUMBER)
                yield Input(placeholder=self.t("map.row"), id="map-row", type=NUMBER)
            with Horizontal(classes="map-row"):
                for key, button_id in (
                    ("map.save", "map-save"),
                    ("map.skip", "map-skip"),
                    ("map.again", "map-again"),
                    ("map.finish", "map-finish"),
                    ("map.back", "map-back"),
                ):
                    yield TButton(key, id=button_id, classes="compact", focus=True)
            yield Static("", id="map-result")

    def on_mount(self) -> None:
        super().on_mount()
        self.prefill()

    @work(group="map")
    async def prefill(self) -> None:
        """The bus of the first board the daemon drives: most banks have one bus."""
        health = await self._call("health")
        boards = (health or {}).get("boards", [])
        if boards and not self.query_one("#map-bus", Input).value:
            self.query_one("#map-bus", Input).value = str(boards[0]["bus"])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id
        event.stop()
        if button_id == "map-back":
            self.app.pop_screen()
        elif button_id == "map-start":
            self.start()
        elif button_id == "map-save":
            self.save()
        elif button_id == "map-skip":
            self.channel += 1
            self.open_next()
        elif button_id == "map-again":
            self.open_next()
        elif button_id == "map-finish":
            self.finish()

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    @work(exclusive=True, group="map")
    async def start(self) -> None:
        unit = self._value("#map-unit")
        if not self._value("#map-bus") or not unit.isdigit():
            self.say("map.need_bus_unit")
            return
        self.bus, self.unit = self._value("#map-bus"), int(unit)
        # A board the daemon drives has its channel count; a new one tells it when opened.
        boards = ((await self._call("health")) or {}).get("boards", [])
        known = [b["channels"] for b in boards if (b["bus"], b["unit"]) == (self.bus, self.unit)]
        self.channel, self.channels, self.lockers = 0, int(known[0]) if known else 1, []
        self.query_one("#map-result", Static).update("")
        await self._open_next()

    def say(self, key: str, **fmt: Any) -> None:
        self.query_one("#map-door", Msg).say(key, **fmt)
        self.refused("")

    def refused(self, text: str) -> None:
        """The daemon's own words for a refusal (a technician reads which label, and why)."""
        self.query_one("#map-error", Static).update(text)

    def open_next(self) -> None:
        self.run_worker(self._open_next(), group="map", exclusive=True)

    async def _open_next(self) -> None:
        """Open `channel` (skipping configured lockers' channels); past the last, finish."""
        while self.channel < self.channels:
            args = {"bus": self.bus, "unit": self.unit, "channel": self.channel}
            try:
                opened = await self.kiosk.link.call("hardware.map_open", profile=PROFILE, **args)
            except ApiError as exc:
                if exc.error.get("locker"):  # a configured locker's channel: not ours to map
                    self.channel += 1
                    continue
                self.say("")
                self.refused(_message(self, exc.error))
                return
            except DaemonUnreachable:
                self.kiosk.show_unreachable()
                return
            self.channels = int(opened["channels"])
            door = self.t(f"door.{opened['door']}")
            self.say("map.opened", channel=self.channel, door=door)
            self.query_one("#map-label", Input).focus()
            return
        await self._finish()

    @work(exclusive=True, group="map")
    async def save(self) -> None:
        """This channel's answers, checked by the daemon with the others, then the next."""
        entry: dict[str, Any] = {
            "label": self._value("#map-label"),
            "size": self._value("#map-size").upper(),
            "channel": self.channel,
        }
        for key in ("column", "row"):
            if self._value(f"#map-{key}").isdigit():
                entry[key] = int(self._value(f"#map-{key}"))
        if await self._entries([*self.lockers, entry]) is None:
            return
        self.lockers.append(entry)
        for selector in ("#map-label", "#map-size", "#map-column", "#map-row"):
            self.query_one(selector, Input).value = ""
        self.channel += 1
        await self._open_next()

    def finish(self) -> None:
        self.run_worker(self._finish(), group="map", exclusive=True)

    async def _finish(self) -> None:
        if not self.bus:
            self.say("map.need_bus_unit")
            return
        toml = await self._entries(self.lockers)
        if toml is not None:
            self.say("map.done", count=len(self.lockers))
            self.query_one("#map-result", Static).update(toml)

    async def _entries(self, lockers: list[dict[str, Any]]) -> str | None:
        args = {"bus": self.bus, "unit": self.unit, "channels": self.channels}
        result = await self._call("hardware.map_entries", profile=PROFILE, lockers=lockers, **args)
        return None if result is None else str(result["toml"])

    async def _call(self, name: str, **args: Any) -> dict[str, Any] | None:
        try:
            return await self.kiosk.link.call(name, **args)
        except ApiError as exc:
            if exc.code == "not_allowed":
                self.kiosk.go_home()
            else:
                self.refused(_message(self, exc.error))
        except DaemonUnreachable:
            self.kiosk.show_unreachable()
        return None


def _message(screen: KioskScreen, error: dict[str, Any]) -> str:
    """A technician reads the daemon's own words for a refused answer (which label, why)."""
    return str(error.get("message") or screen.error_text(error))
