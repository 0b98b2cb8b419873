"""What the fleet screen shows: the fleet line, the table with the selected speaker beside
it, the drift panel, the event log and the status bar, kept current by the app (`show` for
each new snapshot, `poll` each render tick, `fit` on resize). Its keys are FleetScreen's
(tui/screens/fleet.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Footer, Static

from core.eventlog.replay import ReplayMonitor
from core.eventlog.store import EventStore
from core.fleet.events import Event
from core.fleet.model import DriftSummary, DropoutSummary, FleetSnapshot, Speaker
from core.hosts import shown_status
from core.monitor import Monitor
from tui.alerts import Alerts, Toast
from tui.ingest import FleetFeed
from tui.layout import (
    DRIFT_PANEL_HEIGHT,
    SIDE_PANEL_WIDTH,
    side_panel_width,
    too_small,
    too_small_text,
)
from tui.screens.detail import DetailScreen
from tui.style import palette_of
from tui.widgets.drift import DriftPanel
from tui.widgets.fleet_line import FleetLine, replay_banner
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import DetailPanel, EventLog, StatusBar


class FleetView(Screen[None]):
    """The fleet's panels, drawn from the newest snapshot; toasts from its Alerts."""

    def __init__(
        self,
        feed: FleetFeed,
        alerts: Alerts,
        *,
        clock: Callable[[], float],
        event_log: EventStore | None = None,
        log_error: str = "",
    ) -> None:
        super().__init__()
        self.feed = feed
        self.monitor: Monitor = feed.monitor
        #: The monitor again when it replays a log (its clock can pause, seek, speed up).
        self.replay = self.monitor if isinstance(self.monitor, ReplayMonitor) else None
        self.alerts = alerts
        self.clock = clock
        #: The event log (None when off) and why it could not open: the status bar says.
        self.event_log = event_log
        self.log_error = log_error
        #: The newest snapshot shown.
        self.snapshot: FleetSnapshot | None = None
        self._warned = 0
        self._shown_log_problem = ""
        #: Whether the table has a Media column (an HCI source runs): it needs more room.
        self._media = False

    def compose(self) -> ComposeResult:
        yield FleetLine(" connecting…", id="fleet-line")
        with Horizontal(id="main"):
            yield FleetTable(id="fleet")
            yield DetailPanel(id="detail")
        yield DriftPanel(id="drift")
        yield EventLog(id="log")
        yield StatusBar(" connecting to BlueZ…", id="status")
        yield Static(id="too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        if self.replay is not None:
            self.query_one(EventLog).names.update(self.replay.names)
        self.query_one(FleetTable).focus()
        self.fit(self.app.size)

    def show(self, snapshot: FleetSnapshot, events: Sequence[Event]) -> None:
        """Bring every panel in line with a new snapshot, then toast what deserves it."""
        self.snapshot = snapshot
        with self.app.batch_update():
            self.query_one(FleetLine).show(snapshot, self._banner(snapshot))
            self.query_one(FleetTable).show(snapshot)
            self.query_one(EventLog).add(events, snapshot.t)
            self._show_status(snapshot)
            self._show_detail()
            self._show_drift(snapshot)
            if self.has_class("too-small") or bool(snapshot.hci_status) != self._media:
                self.fit(self.app.size)  # the notice carries the fleet's line; Media widens it
        for toast in self.alerts.update(snapshot, events):
            self.toast(toast)

    def poll(self, updated: bool) -> None:
        """Each render tick: the event log's health (it can fail, or recover, while the fleet
        is quiet: `updated` False) and the Monitor's new warnings, into the log."""
        problem = self.log_problem()
        if not updated and self.snapshot is not None and problem != self._shown_log_problem:
            self._show_status(self.snapshot)
        self._shown_log_problem = problem
        warnings = self.feed.warnings()
        if len(warnings) > self._warned:
            log = self.query_one(EventLog)
            for text in warnings[self._warned :]:
                log.warn(text, self.clock())
            self._warned = len(warnings)

    def toast(self, toast: Toast) -> None:
        self.notify(
            toast.message,
            title=toast.title,
            severity=toast.severity,
            timeout=toast.timeout,
            markup=False,
        )

    def log_problem(self) -> str:
        """'' while the event log writes; else what is wrong with it, in words."""
        if self.log_error:
            return self.log_error
        if self.event_log is not None and not self.event_log.status.ok:
            return self.event_log.status.detail
        return ""

    def _show_status(self, snapshot: FleetSnapshot) -> None:
        self.query_one(StatusBar).show(
            shown_status(snapshot),
            len(self.feed.warnings()),
            self.log_problem(),
            snapshot.hci_status,
        )

    def _banner(self, snapshot: FleetSnapshot) -> Text | None:
        """'REPLAY …' at the top of a replay; None live."""
        if self.replay is None:
            return None
        return replay_banner(self.replay, snapshot.t, time.time(), palette_of(self.app))

    def _show_drift(self, snapshot: FleetSnapshot) -> None:
        panel = self.query_one(DriftPanel)
        has_data = snapshot.drift is not None or bool(snapshot.probing)
        visible = has_data and self.app.size.height >= DRIFT_PANEL_HEIGHT
        panel.set_class(visible, "shown")
        if visible:
            panel.show(snapshot.drift, snapshot.probing, snapshot.t, snapshot.alignment)

    def _speaker(self, path: str | None) -> tuple[Speaker | None, DropoutSummary | None]:
        if self.snapshot is None or path is None:
            return None, None
        speaker = next((s for s in self.snapshot.speakers if s.path == path), None)
        summary = self.snapshot.dropouts.get(speaker.key) if speaker else None
        return speaker, summary

    def _drift(self) -> DriftSummary | None:
        return self.snapshot.drift if self.snapshot is not None else None

    def _show_detail(self) -> None:
        """The selected speaker beside the table (when there is room) and in the detail
        view (when it is open)."""
        if not self.app.screen_stack:  # a selection posted as the app closes: nothing to show
            return
        now = self.clock()
        detail = self.app.screen
        if isinstance(detail, DetailScreen) and detail.is_mounted:
            speaker, summary = self._speaker(detail.path)
            detail.show(speaker, self.feed.history, now, summary, self._drift())
        panel = self.query_one("#detail", DetailPanel)
        if panel.display or self.app.size.width >= SIDE_PANEL_WIDTH:
            speaker, summary = self._speaker(self.query_one(FleetTable).selected_path)
            panel.show(speaker, self.feed.history, now, summary, self._drift())

    @on(FleetTable.SpeakerSelected)
    def _selected(self, _message: FleetTable.SpeakerSelected) -> None:
        self._show_detail()

    @on(FleetTable.OpenDetail)
    async def _open_detail(self, message: FleetTable.OpenDetail) -> None:
        await self.app.push_screen(DetailScreen(message.path))  # mounted: it can be filled
        self._show_detail()

    def selected_speaker(self) -> Speaker | None:
        speaker, _summary = self._speaker(self.query_one(FleetTable).selected_path)
        return speaker

    def fit(self, size: Size) -> None:
        """Lay the view out for a `size` terminal: the too-small notice, the side panel's
        width, the drift panel when there is room for it."""
        width, height = size
        small = too_small(width, height)
        self.set_class(small, "too-small")
        if small:
            fleet = self.snapshot.counts.line() if self.snapshot is not None else ""
            self.query_one("#too-small", Static).update(too_small_text(width, height, fleet))
        self._media = self.snapshot is not None and bool(self.snapshot.hci_status)
        self.query_one("#detail").styles.width = side_panel_width(width, self._media)
        self.query_one("#main").set_class(width >= SIDE_PANEL_WIDTH, "wide")
        if self.snapshot is not None:
            self.query_one(DriftPanel).set_class(
                height >= DRIFT_PANEL_HEIGHT
                and (self.snapshot.drift is not None or bool(self.snapshot.probing)),
                "shown",
            )
        if not small and self.app.screen is self:
            # The table loses focus while hidden (too small): take it back, so its keys
            # (⏎ Details) stay in the footer after the terminal grows again.
            self.call_after_refresh(self._refocus)

    def _refocus(self) -> None:
        if self.app.screen is self and self.focused is None:
            self.query_one(FleetTable).focus()

    def forget_history(self) -> None:
        """A replay going back in time: it plays again from its first record up to there,
        and what the log and the detail view showed after that moment has not happened yet
        (nor have the predictions announced since)."""
        self.query_one(EventLog).clear()
        self.feed.forget()
        self.alerts.forget()

    def _fleet_table(self) -> FleetTable | None:
        """The fleet table; None while the app closes (an action may end after its screen)."""
        if not self.app.screen_stack:
            return None
        try:
            return self.query_one(FleetTable)
        except NoMatches:
            return None
