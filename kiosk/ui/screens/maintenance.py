"""The technician's screen: door grid and actions, parcels, log, health, self-test."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.widgets import Button, DataTable, ProgressBar, TabbedContent, TabPane

from kiosk.ui.link import ApiError, DaemonUnreachable
from kiosk.ui.screens.base import KioskScreen
from kiosk.ui.screens.modals import CheckModal, ReasonModal
from kiosk.ui.tables import TapTable
from kiosk.ui.widgets import Msg, TButton

#: Seconds between refreshes of the door grid (events refresh it at once too).
REFRESH_S = 1.0
GRID = ("locker", "size", "status", "door", "check")
AUDIT = ("time", "actor", "action", "subject")
HEALTH = ("board", "kind", "channels", "online", "errors")
PARCELS = ("parcel", "size", "pstatus", "locker", "expires", "check")
#: Health counters that count something gone wrong (the rest count work done).
ERROR_COUNTERS = (
    "timeouts",
    "bad_frames",
    "errors",
    "read_errors",
    "door_read_failures",
    "settings_rewritten",
    "settings_failures",
)


class MaintenanceScreen(KioskScreen):
    """Behind a technician's PIN; every action is a technician call with the session token."""

    def __init__(self, technician: str) -> None:
        super().__init__(classes="maintenance")
        self.technician = technician
        self.status: dict[str, Any] = {}
        self.doors: dict[str, str] = {}
        self.parcels: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="tech-head"):
            yield Msg("tech.title", classes="apptitle")
            yield Msg("tech.who", classes="who", technician=self.technician)
            yield TButton("app.language", id="language", classes="small", focus=True)
            yield TButton("tech.logout", id="logout", classes="small", focus=True)
        with Horizontal(classes="sync"):
            yield Msg("", id="sync")
            yield Msg("", id="site-locked", classes="warning")
            yield Msg("", id="note", classes="note")
        with TabbedContent(id="tabs"):
            with TabPane(self.t("tech.doors"), id="tab-doors"), Horizontal():
                yield TapTable(id="grid", zebra_stripes=True)
                with Vertical(classes="tech-actions"):
                    for key, button_id in (
                        ("tech.open", "open"),
                        ("tech.out", "out"),
                        ("tech.in", "in"),
                        ("tech.check", "check"),
                        ("tech.reset", "reset"),
                    ):
                        yield TButton(key, id=button_id, classes="compact", focus=True)
            with TabPane(self.t("tech.parcels"), id="tab-parcels"):
                yield TapTable(id="parcels", zebra_stripes=True)
            with TabPane(self.t("tech.audit"), id="tab-audit"):
                yield TapTable(id="audit")
            with TabPane(self.t("tech.health"), id="tab-health"), Vertical():
                yield TapTable(id="health")
                yield TButton("tech.commission", id="commission", classes="compact", focus=True)
            with TabPane(self.t("tech.selftest"), id="tab-selftest"), Vertical():
                yield TButton("tech.run", id="run-selftest", classes="compact", focus=True)
                yield ProgressBar(id="progress", show_eta=False)
                yield Msg("", id="selftest-result", classes="reason")

    def on_mount(self) -> None:
        if self.taken_off:
            return  # its widgets are gone: nothing to fill, no daemon to poll for it
        super().relabel()  # F3 may have switched the language while it was being built
        self._tabs()
        self._columns()
        self.query_one("#grid", DataTable).focus()
        self.refresh_grid()
        self.set_interval(REFRESH_S, self.refresh_grid)

    @property
    def taken_off(self) -> bool:
        """Popped (logout, idle timeout, daemon lost) or the app closing: its widgets go.

        Textual prunes a popped screen's widgets first and cancels its workers only
        after that, and it still mounts a screen popped before it was built (a push
        only queues the compose, which takes many turns of the event loop on a slow
        machine). Meanwhile the screen is still attached, with its widgets gone.
        """
        app = self.app
        return not self.is_attached or not app.is_running or self not in app.screen_stack

    def _columns(self) -> None:
        for table_id, columns in (
            ("#grid", GRID),
            ("#parcels", PARCELS),
            ("#audit", AUDIT),
            ("#health", HEALTH),
        ):
            table = self.query_one(table_id, DataTable)
            table.clear(columns=True)
            for column in columns:
                table.add_column(self.t(f"tech.col.{column}"), key=column)

    def _tabs(self) -> None:
        tabs = self.query_one(TabbedContent)
        for pane_id, key in (
            ("tab-doors", "tech.doors"),
            ("tab-parcels", "tech.parcels"),
            ("tab-audit", "tech.audit"),
            ("tab-health", "tech.health"),
            ("tab-selftest", "tech.selftest"),
        ):
            tabs.get_tab(pane_id).label = self.t(key)

    def relabel(self) -> None:
        super().relabel()
        if not self.is_mounted or self.taken_off:
            return  # still being built (F3 on a slow machine; on_mount labels the rest), or gone
        self._tabs()
        self._columns()
        self._fill_grid()
        self._fill_parcels()

    # --- reading ------------------------------------------------------------

    def daemon_event(self, event: str, data: dict[str, Any]) -> None:
        if not self.is_mounted:
            return  # still being built: a refresh could fill a grid not there yet; on_mount does
        self.refresh_grid()
        if self.query_one(TabbedContent).active == "tab-parcels":
            self.load_parcels()

    @work(exclusive=True, group="grid")
    async def refresh_grid(self) -> None:
        """status + doors: the grid and the sync line."""
        status = await self._call("status")
        doors = await self._call("doors")
        if status is None or doors is None:
            return
        self.status = status
        self.doors = {d["label"]: d["door"] for d in doors.get("doors", [])}
        self._fill_grid()

    def _fill_grid(self) -> None:
        grid = self.query_one("#grid", DataTable)
        state = "online" if self.status.get("online") else "offline"
        sync = self.query_one("#sync", Msg)
        depth = self.status.get("outbox_depth", 0)
        if not self.status.get("cloud"):  # no [mqtt]: nothing to be offline from
            sync.say("tech.no_cloud", depth=depth)
        else:
            sync.say(
                "tech.sync",
                state=self.t(f"tech.{state}"),
                depth=depth,
                contact=self.status.get("last_contact") or self.t("tech.never"),
            )
        locked = self.query_one("#site-locked", Msg)
        locked.say("tech.site_locked" if self.status.get("site_locked") else "")
        for locker in self.status.get("lockers", []):
            label = locker["label"]
            cells = {
                "locker": label,
                "size": locker["size"],
                "status": self.t(f"status.{locker['status']}"),
                "door": self.t(f"door.{self.doors.get(label, 'unknown')}"),
                "check": self.t("tech.yes") if locker.get("needs_check") else "",
            }
            if label in grid.rows:
                for column, value in cells.items():
                    grid.update_cell(label, column, value)
            else:
                grid.add_row(*cells.values(), key=label)

    def selected(self) -> str | None:
        grid = self.query_one("#grid", DataTable)
        if not grid.row_count:
            return None
        row_key, _ = grid.coordinate_to_cell_key(Coordinate(grid.cursor_row, 0))
        return str(row_key.value)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id
        if pane == "tab-parcels":
            self.load_parcels()
        elif pane == "tab-audit":
            self.load_audit()
        elif pane == "tab-health":
            self.load_health()

    @work(exclusive=True, group="parcels")
    async def load_parcels(self) -> None:
        """The last 30 days' parcels, those still here first (flagged ones at the very top)."""
        result = await self._call("parcels")
        if result is None:
            return
        here = {"EXPECTED": 1, "DELIVERED": 0, "EXPIRED": 0}
        self.parcels = sorted(
            result.get("parcels", []),
            key=lambda p: (not p["needs_check"], here.get(p["status"], 2), p["parcel_id"]),
        )
        self._fill_parcels()

    def _fill_parcels(self) -> None:
        table = self.query_one("#parcels", DataTable)
        table.clear()
        for parcel in self.parcels:
            expires = _minute(parcel["expires_at"])
            table.add_row(
                parcel["parcel_id"],
                parcel["size"],
                self.t(f"pstatus.{parcel['status']}"),
                parcel["locker"] or "",
                expires,
                self.t("tech.yes") if parcel["needs_check"] else "",
                key=parcel["parcel_id"],
            )

    @work(exclusive=True, group="audit")
    async def load_audit(self) -> None:
        result = await self._call("audit.tail", n=50)
        if result is None:
            return
        table = self.query_one("#audit", DataTable)
        table.clear()
        for row in reversed(result.get("rows", [])):
            table.add_row(str(row["ts"])[:19], row["actor"], row["action"], row["subject"])

    @work(exclusive=True, group="health")
    async def load_health(self) -> None:
        result = await self._call("health")
        if result is None:
            return
        table = self.query_one("#health", DataTable)
        table.clear()
        for board in result.get("boards", []):
            errors = sum(board.get("counters", {}).get(name, 0) for name in ERROR_COUNTERS)
            table.add_row(
                f"{board['bus']}/{board['unit']}",
                board["kind"],
                str(board["channels"]),
                self.t("tech.yes") if board["online"] else self.t("tech.no"),
                str(errors),
            )

    # --- acting -------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id
        event.stop()
        if button_id == "logout":
            self.kiosk.go_home()
        elif button_id == "reset":
            self.reset_lockout()
        elif button_id == "run-selftest":
            self.selftest()
        elif button_id == "commission":
            from kiosk.ui.screens.commission import CommissionScreen

            self.app.push_screen(CommissionScreen())
        elif button_id in ("open", "out", "in", "check"):
            label = self.selected()
            if label is None:
                self.note(self.t("tech.none_selected"), "warning")
                return
            if button_id == "check":
                self.ask_check(label)
                return
            self.app.push_screen(
                ReasonModal(f"tech.{button_id}", label),
                lambda reason: self._act(button_id, label, reason),
            )

    def _act(self, action: str, label: str, reason: str | None) -> None:
        if reason:
            self.act(action, label, reason)

    @work(group="act")
    async def act(self, action: str, label: str, reason: str) -> None:
        if action == "open":
            done = await self._call("door.open", locker=label, reason=reason)
            text = "tech.opened"
        else:
            done = await self._call(
                "locker.service", locker=label, in_service=action == "in", reason=reason
            )
            text = "tech.now_in" if action == "in" else "tech.now_out"
        if done is not None:
            self.note(self.t(text, locker=label))
        self.refresh_grid()

    @work(group="act")
    async def ask_check(self, label: str) -> None:
        """A flagged locker: what did the technician find inside? (`kiosk check`)"""
        status = await self._call("status")  # now, not as the grid last showed it
        if status is None:
            return
        locker = next((lk for lk in status.get("lockers", []) if lk["label"] == label), {})
        if not locker.get("needs_check"):
            self.note(self.t("tech.not_flagged", locker=label), "warning")
            return
        self.app.push_screen(CheckModal(label), lambda found: self._checked(label, found))

    def _checked(self, label: str, found: tuple[bool, str] | None) -> None:
        if found is not None:
            self.record_check(label, *found)

    @work(group="act")
    async def record_check(self, label: str, parcel_inside: bool, reason: str) -> None:
        done = await self._call(
            "locker.check", locker=label, parcel_inside=parcel_inside, reason=reason
        )
        if done is not None:
            key = "tech.checked_inside" if parcel_inside else "tech.checked_empty"
            self.note(self.t(key, locker=label, status=self.t(f"status.{done['status']}")))
        self.refresh_grid()
        self.load_parcels()

    @work(group="act")
    async def reset_lockout(self) -> None:
        if await self._call("lockout.reset") is not None:
            self.note(self.t("tech.reset_done"))
        self.refresh_grid()

    @work(exclusive=True, group="selftest")
    async def selftest(self) -> None:
        """selftest door by door (each reads its own board a few times): the bar moves per door."""
        bar = self.query_one("#progress", ProgressBar)
        result_line = self.query_one("#selftest-result", Msg)
        labels = [lk["label"] for lk in self.status.get("lockers", [])]
        bar.update(total=max(1, len(labels)), progress=0)
        result_line.say("tech.selftest_running")
        doors: list[dict[str, Any]] = []
        for label in labels:
            result = await self._call("selftest", locker=label)
            if result is None:
                result_line.say("")
                return
            doors.extend(result.get("doors", []))
            bar.advance(1)
        bad = [f"{d['label']}={'/'.join(d['readings'])}" for d in doors if not d["ok"]]
        if bad:
            result_line.say("tech.selftest_fault", doors=", ".join(bad))
        else:
            result_line.say("tech.selftest_ok", count=len(doors))

    def note(self, text: str, severity: str = "information") -> None:
        """The outcome of an action: on the sync line (it stays) and as a toast."""
        self.query_one("#note", Msg).update(text)
        self.notify(text, severity=severity)  # type: ignore[arg-type]

    async def _call(self, name: str, **args: Any) -> dict[str, Any] | None:
        """A technician call; refusals become a toast, a lost session or daemon goes home."""
        try:
            result = await self.kiosk.link.call(name, **args)
            return None if self.taken_off else result  # logged out meanwhile: drop it
        except ApiError as exc:
            if self.taken_off:
                return None
            if exc.code == "not_allowed":
                self.kiosk.go_home()
            self.note(self.error_text(exc.error), "error")
        except DaemonUnreachable:
            self.kiosk.show_unreachable()
        return None


def _minute(iso: str | None) -> str:
    """An ISO timestamp to the minute, as a technician reads it (2026-11-25 14:05)."""
    return (iso or "")[:16].replace("T", " ")
