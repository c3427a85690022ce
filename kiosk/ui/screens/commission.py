"""Mapping a new bank from the maintenance screen: open each channel, name its door, get the TOML.

The same API calls as `kiosk hardware map`: `hardware.map_open` (the daemon
audits and pulses each channel) and `hardware.map_entries` (it checks the
answers against the config and renders the [[board]] / [[locker]] entries).
The screen holds no files: it shows the entries for the technician to add to
the config (or to write with `kiosk hardware map --out FILE` at the terminal).

Everything is a tap: the bus and unit come from the boards the daemon drives (with
steps for the unit), each opened door gets the next label in the bank's naming
(kiosk/ui/labels.py) with steps for its column letter and row number, and S/M/L
buttons; the fields still take a keyboard's typing.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from kiosk.ui import labels
from kiosk.ui.link import ApiError, DaemonUnreachable
from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.widgets import Msg, TButton

PROFILE = "kiosk-v1"
#: Input type of the unit, column and row fields (digits only).
NUMBER = "integer"
SIZES = ("S", "M", "L")
#: A board's unit on its bus, as the daemon takes it (hardware.map_open).
UNITS = (1, 247)
#: The number fields a tap steps by one: (field, least value).
STEPPED = {"unit": UNITS[0], "column": 1, "row": 1}


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
        self.taken: list[str] = []  # the configured lockers' labels
        self.buses: list[str] = []  # the buses of the boards the daemon drives

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(classes="tech-head"):
                yield Msg("map.title", classes="apptitle")
                yield TButton("map.back", id="map-back", classes="small", focus=True)
            with Horizontal(classes="map-row"):
                yield Input(placeholder=self.t("map.bus"), id="map-bus")
                yield TButton("map.next_bus", id="map-bus-next", classes="compact", focus=True)
                yield from _stepper("unit", self.t("map.unit"))
                yield TButton("map.start", id="map-start", classes="compact", focus=True)
            yield Msg("", id="map-door")
            yield Static("", id="map-error", classes="warning")
            with Vertical(id="map-form"):
                with Horizontal(classes="map-row"):
                    yield TButton("map.column_back", id="map-label-left", classes="compact")
                    yield Input(placeholder=self.t("map.label"), id="map-label", max_length=16)
                    yield TButton("map.column_next", id="map-label-right", classes="compact")
                    yield TButton("map.row_back", id="map-label-up", classes="compact")
                    yield TButton("map.row_next", id="map-label-down", classes="compact")
                with Horizontal(classes="map-row"):
                    for size in SIZES:
                        yield TButton(f"map.{size}", id=f"map-size-{size}", classes="compact size")
                    yield Input(placeholder=self.t("map.size"), id="map-size", max_length=1)
                    yield from _stepper("column", self.t("map.column"))
                    yield from _stepper("row", self.t("map.row"))
                with Horizontal(classes="map-row map-actions"):
                    for key, button_id in (
                        ("map.save", "map-save"),
                        ("map.skip", "map-skip"),
                        ("map.again", "map-again"),
                        ("map.finish", "map-finish"),
                    ):
                        yield TButton(key, id=button_id, classes="compact", focus=True)
            yield Static("", id="map-result")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#map-form").display = False  # until a channel is open
        self.query_one("#map-bus-next").display = False  # until a second bus is known
        self.prefill()

    @work(group="map")
    async def prefill(self) -> None:
        """The bus and unit of the first board the daemon drives (most banks have one bus),
        and the labels configured already (a new door's label continues them)."""
        health = await self._call("health")
        status = await self._call("status")
        self.taken = [str(lk["label"]) for lk in (status or {}).get("lockers", [])]
        boards = (health or {}).get("boards", [])
        self.buses = list(dict.fromkeys(str(board["bus"]) for board in boards))
        self.query_one("#map-bus-next").display = len(self.buses) > 1
        if boards and not self._value("#map-bus"):
            self.query_one("#map-bus", Input).value = str(boards[0]["bus"])
        if boards and not self._value("#map-unit"):
            self.query_one("#map-unit", Input).value = str(boards[0]["unit"])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        event.stop()
        if self.tapped(button_id):
            return
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

    def tapped(self, button_id: str) -> bool:
        """A tap that fills a field (a step, a size, the next bus); False for any other."""
        field, _, how = button_id.removeprefix("map-").partition("-")
        if field in STEPPED and how in ("less", "more"):
            now = self._value(f"#map-{field}")
            least = STEPPED[field]
            value = int(now) + (1 if how == "more" else -1) if now.isdigit() else least
            self._set(f"#map-{field}", str(min(max(value, least), UNITS[1])))
        elif field == "label" and how in ("left", "right", "up", "down"):
            columns = {"left": -1, "right": 1}.get(how, 0)
            rows = {"up": -1, "down": 1}.get(how, 0)
            self._set("#map-label", labels.step(self._value("#map-label"), columns, rows))
        elif field == "size" and how in SIZES:
            self._set("#map-size", how)
        elif field == "bus" and how == "next" and self.buses:
            now = self._value("#map-bus")
            at = self.buses.index(now) + 1 if now in self.buses else 0
            self._set("#map-bus", self.buses[at % len(self.buses)])
        else:
            return False
        return True

    def _set(self, selector: str, value: str) -> None:
        self.query_one(selector, Input).value = value

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "map-size":
            for size in SIZES:
                button = self.query_one(f"#map-size-{size}")
                button.set_class(event.value.strip().upper() == size, "-current")

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
            self.propose()
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
        for selector in ("#map-label", "#map-column", "#map-row"):
            self.query_one(selector, Input).value = ""  # the size stays: doors come in runs
        self.channel += 1
        await self._open_next()

    def propose(self) -> None:
        """A door is open: show its answers' fields with the next label in the bank's naming."""
        self.query_one("#map-form").display = True
        last = str(self.lockers[-1]["label"]) if self.lockers else ""
        taken = [*self.taken, *(str(lk["label"]) for lk in self.lockers)]
        field = self.query_one("#map-label", Input)
        if not field.value.strip():
            field.value = labels.after(last, taken)
        field.focus()  # a keyboard's typing replaces the proposal (select on focus)

    def finish(self) -> None:
        self.run_worker(self._finish(), group="map", exclusive=True)

    async def _finish(self) -> None:
        if not self.bus:
            self.say("map.need_bus_unit")
            return
        toml = await self._entries(self.lockers)
        if toml is not None:
            self.say("map.done", count=len(self.lockers))
            self.query_one("#map-form").display = False
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


def _stepper(field: str, placeholder: str) -> ComposeResult:
    """A number field between "-" and "+" buttons (map-<field>-less, map-<field>-more)."""
    yield TButton("map.less", id=f"map-{field}-less", classes="compact step")
    yield Input(placeholder=placeholder, id=f"map-{field}", type=NUMBER, classes="number")
    yield TButton("map.more", id=f"map-{field}-more", classes="compact step")


def _message(screen: KioskScreen, error: dict[str, Any]) -> str:
    """A technician reads the daemon's own words for a refused answer (which label, why)."""
    return str(error.get("message") or screen.error_text(error))
