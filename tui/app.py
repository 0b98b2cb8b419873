"""BtmonApp composes the fleet view from snapshots pulled on a steady timer; it computes nothing."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Mapping

from rich.console import Console
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.widgets import Footer, Static

from core.bluez.control import Controller, Timeouts
from core.describe import age, countdown, describe_dropout, describe_event
from core.events import ActionEvent, DropoutEvent, Event
from core.model import (
    DriftSummary,
    DropoutSummary,
    FleetSnapshot,
    SourceStatus,
    Speaker,
)
from core.monitor import Monitor
from core.probe.runner import Backend
from core.store import EventStore
from tui.action_keys import ActionKeys
from tui.actions import ActionQueue
from tui.ingest import FleetFeed, FleetUpdated, SourceChanged
from tui.probe_keys import ProbeKeys
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.widgets.drift import DriftPanel
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import DetailPanel, EventLog, FleetLine, StatusBar

#: Render rate: the screen is repainted from a snapshot at most this often (DESIGN §2);
#: 10 Hz keeps change -> screen latency well under 250 ms while bursts coalesce.
RENDER_INTERVAL_S = 0.1
#: gc thresholds while the app runs (CPython's default is 700, 10, 10); measured in bench/.
GC_THRESHOLDS = (2000, 10, 100)
#: A predicted dropout is announced this many seconds ahead.
DUE_WARNING_S = 30
#: Below this size the layout cannot show a usable table; we say so instead.
MIN_WIDTH, MIN_HEIGHT = 60, 12
#: Width from which the detail panel sits beside the table.
SIDE_PANEL_WIDTH = 120
#: Height from which the drift panel shows under the table (below it, probes show as toasts
#: and in the event log: the fleet table comes first).
DRIFT_PANEL_HEIGHT = 36
#: With --probe-every, the first probe runs this long after start (the fleet is known by then).
FIRST_PROBE_S = 2.0
#: Seconds an action's outcome stays on screen as a toast (failures need reading).
DONE_TOAST_S, FAILED_TOAST_S = 5, 12
#: Actions that act on the fleet view's speakers (hidden on the help and detail screens).
FLEET_ACTIONS = (
    "toggle_log",
    "toggle_all",
    "resync",
    "resync_all",
    "connect",
    "disconnect",
    "cancel_action",
    "probe",
)


class BtmonApp(ActionKeys, ProbeKeys, App[int]):
    """btmon-tui's live fleet view."""

    CSS_PATH = "app.tcss"
    TITLE = "btmon-tui"
    #: The footer shows actions and the way to the rest (?, q) in 80 columns; l and a are in
    #: the help screen.
    BINDINGS = [
        Binding("r", "resync", "Resync"),
        Binding("R", "resync_all", "Resync all", key_display="R"),
        Binding("c", "connect", "Connect"),
        Binding("d", "disconnect", "Disconnect"),
        Binding("p", "probe", "Probe"),
        Binding("escape", "cancel_action", "Cancel", key_display="esc"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("l", "toggle_log", "Log", show=False),
        Binding("a", "toggle_all", "All devices", show=False),
    ]

    def __init__(
        self,
        feed: FleetFeed,
        *,
        clock: Callable[[], float] = time.time,
        ansi_color: bool = False,
        log: EventStore | None = None,
        log_error: str = "",
        controller: Controller | None = None,
        probe_backend: Backend | None = None,
        probe_every_s: float | None = None,
    ) -> None:
        super().__init__(ansi_color=ansi_color)
        #: Plays and records probes (a microphone; the demo's simulated room).
        self.probe_backend = probe_backend
        #: Seconds between automatic probes (--probe-every), None = only on `p`.
        self.probe_every_s = probe_every_s
        #: The one Controller: actions run as tasks on this app's loop, never in widgets.
        self.controller = controller or Controller(feed.monitor)
        self.controller.on_progress = self._on_progress
        self.actions = ActionQueue(
            self.controller, on_change=self._action_changed, wanted=self._still_wanted
        )
        #: The event log (None when off); its health is shown in the status bar.
        self.event_log = log
        self.log_error = log_error
        self.feed = feed
        self.clock = clock
        self.snapshot: FleetSnapshot | None = None
        self._source: SourceStatus | None = None
        self._warned = 0
        self._shown_log_problem = ""
        #: What the last probe toast said (speakers not heard, the fleet's sync word).
        self._probe_news: tuple[frozenset[str], str] = (frozenset(), "")
        #: Predicted dropout time already announced per speaker (one toast per prediction).
        self._warned_due: dict[str, float] = {}

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
        # Full collections of Textual's many short-lived objects stalled the loop for
        # 100-280 ms under load (bench/RESULTS.md problem 1): freeze what start-up built and
        # collect the young generation less often.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.run_feed()
        self.set_interval(RENDER_INTERVAL_S, self.pull)
        if self.probe_every_s:
            self.set_timer(FIRST_PROBE_S, self._periodic_probe)
            self.set_interval(self.probe_every_s, self._periodic_probe)
        self.query_one(FleetTable).focus()
        self._apply_size()

    @work(exclusive=True, exit_on_error=False, group="feed")
    async def run_feed(self) -> None:
        await self.feed.run()

    def pull(self) -> None:
        """Timer: hand the newest snapshot (if any) to the widgets via a message."""
        update = self.feed.pull()
        if update is not None:
            self.post_message(FleetUpdated(*update))
        elif self.snapshot is not None and self._log_problem() != self._shown_log_problem:
            # The log can fail (disk full) or recover while the fleet is quiet.
            self.query_one(StatusBar).show(
                self.snapshot.source,
                len(self.feed.warnings()),
                self._log_problem(),
                self.snapshot.hci_status,
            )
        self._shown_log_problem = self._log_problem()
        warnings = self.feed.warnings()
        if len(warnings) > self._warned:
            log = self.query_one(EventLog)
            for text in warnings[self._warned :]:
                log.warn(text, self.clock())
            self._warned = len(warnings)

    @on(FleetUpdated)
    def show_fleet(self, message: FleetUpdated) -> None:
        snapshot = message.snapshot
        self.snapshot = snapshot
        with self.batch_update():
            self.query_one(FleetLine).show(snapshot)
            self.query_one(FleetTable).show(snapshot)
            self.query_one(EventLog).add(message.events)
            self.query_one(StatusBar).show(
                snapshot.source,
                len(self.feed.warnings()),
                self._log_problem(),
                snapshot.hci_status,
            )
            self._show_detail()
            self._show_drift(snapshot)
        if snapshot.source != self._source:
            self._source = snapshot.source
            self.post_message(SourceChanged(snapshot.source))
        self._alert(snapshot, message.events)

    def _show_drift(self, snapshot: FleetSnapshot) -> None:
        panel = self.query_one(DriftPanel)
        has_data = snapshot.drift is not None or bool(snapshot.probing)
        visible = has_data and self.size.height >= DRIFT_PANEL_HEIGHT
        panel.set_class(visible, "shown")
        if visible:
            panel.show(snapshot.drift, snapshot.probing, snapshot.t)

    def _log_problem(self) -> str:
        """'' while the event log writes; else what is wrong with it, in words."""
        if self.log_error:
            return self.log_error
        if self.event_log is not None:
            status = self.event_log.status
            if not status.ok:
                return status.detail
        return ""

    def _alert(self, snapshot: FleetSnapshot, events: list[Event]) -> None:
        """A toast when a speaker drops out, when a predicted dropout is near, and when an
        action ends."""
        names = {s.address: s.name for s in snapshot.speakers}
        for event in events:
            if isinstance(event, ActionEvent):
                self._action_toast(event, names)
            if isinstance(event, DropoutEvent) and event.phase == "start":
                self.notify(
                    f"{names.get(event.address, event.address)}: "
                    + describe_dropout(event.kind, event.together_with),
                    title="Dropout",
                    severity="error",
                    timeout=8,
                )
        for address, summary in snapshot.dropouts.items():
            due = summary.next_expected
            if due is None or address not in names or self._warned_due.get(address) == due:
                continue
            if 0 <= due - snapshot.t <= DUE_WARNING_S:
                self._warned_due[address] = due
                self.notify(
                    f"{names[address]} is expected to drop in {countdown(due - snapshot.t)} "
                    f"(every {age(summary.period_s or 0)}): resync it now or swap it",
                    title="Dropout due",
                    severity="warning",
                    timeout=10,
                )

    def _action_toast(self, event: ActionEvent, names: dict[str, str]) -> None:
        """The outcome in the log's words: green when it worked, red with BlueZ's words when
        it did not, yellow when the operator cancelled it."""
        line = describe_event(event.to_json(), names) or ""
        if event.result == "ok":
            title, severity, timeout = "done", "information", DONE_TOAST_S
        elif event.detail == "cancelled":
            title, severity, timeout = "cancelled", "warning", DONE_TOAST_S
        else:
            title, severity, timeout = "failed", "error", FAILED_TOAST_S
        title = f"{event.action.capitalize()}: {title}"
        self.notify(line, title=title, severity=severity, timeout=timeout, markup=False)

    @on(FleetTable.SpeakerSelected)
    def _selected(self, _message: FleetTable.SpeakerSelected) -> None:
        self._show_detail()

    @on(FleetTable.OpenDetail)
    def _open_detail(self, message: FleetTable.OpenDetail) -> None:
        screen = DetailScreen(message.path)
        self.push_screen(screen)
        self.call_after_refresh(self._show_detail)

    def _speaker(self, path: str | None) -> tuple[Speaker | None, DropoutSummary | None]:
        if self.snapshot is None or path is None:
            return None, None
        speaker = next((s for s in self.snapshot.speakers if s.path == path), None)
        summary = self.snapshot.dropouts.get(speaker.address) if speaker else None
        return speaker, summary

    def _show_detail(self) -> None:
        if not self.screen_stack:  # a selection posted as the app closes: nothing to show
            return
        now = self.clock()
        if isinstance(self.screen, DetailScreen):
            speaker, summary = self._speaker(self.screen.path)
            self.screen.show(speaker, self.feed.history, now, summary, self._drift())
        panel = self.query_one("#detail", DetailPanel)
        if panel.display or self.size.width >= SIDE_PANEL_WIDTH:
            speaker, summary = self._speaker(self.query_one(FleetTable).selected_path)
            panel.show(speaker, self.feed.history, now, summary, self._drift())

    def _drift(self) -> DriftSummary | None:
        return self.snapshot.drift if self.snapshot is not None else None

    def on_resize(self, event: events.Resize) -> None:
        # This handler runs before App._on_resize stores the new size: use the event's.
        self._apply_size(event.size)

    def _apply_size(self, size: Size | None = None) -> None:
        width, height = size or self.size
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.screen.set_class(small, "too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal is {width}×{height}; btmon-tui needs at least "
                f"{MIN_WIDTH}×{MIN_HEIGHT}.\nEnlarge the window, or press q to quit."
            )
        self.query_one("#main").set_class(width >= SIDE_PANEL_WIDTH, "wide")
        if self.snapshot is not None:
            self.query_one(DriftPanel).set_class(
                height >= DRIFT_PANEL_HEIGHT
                and (self.snapshot.drift is not None or bool(self.snapshot.probing)),
                "shown",
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Toggles and actions act on the fleet view only: hide them on other screens (where
        esc keeps its meaning: close, back, no)."""
        on_fleet_view = self.screen is self.screen_stack[0]
        if action == "cancel_action" and not (self.actions.running or self.actions.queued):
            return False  # esc (cancel) shows in the footer only while an action runs
        return on_fleet_view or action not in FLEET_ACTIONS

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_log(self) -> None:
        self.query_one(EventLog).toggle_class("hidden")

    def action_toggle_all(self) -> None:
        mirror = self.feed.mirror
        mirror.set_include_all(not mirror.state.include_all)
        self.notify(
            "Showing every paired device"
            if mirror.state.include_all
            else "Showing speakers only (A2DP sinks)",
            timeout=3,
        )

    def on_unmount(self) -> None:
        # Closing mid-action: each running action ends as cancelled (and is logged so).
        self.controller.on_progress = None
        self.actions.on_change = lambda _address: None
        self.actions.cancel_all(message="btmon-tui was closed during the action")


def make_app(
    bus: str,
    *,
    bus_label: str = "",
    include_all: bool = False,
    clock: Callable[[], float] = time.time,
    history: Iterable[Mapping[str, object]] = (),
    log: EventStore | None = None,
    log_error: str = "",
    monitor: Monitor | None = None,
    timeouts: Timeouts | None = None,
    probe_backend: Backend | None = None,
    probe_every_s: float | None = None,
) -> BtmonApp:
    """The one app factory, used by the command line, the tests and the screenshot script.

    `history`: recorded dropout records (from the event log, or the demo's seed) to start with.
    `timeouts`: per-step limits of resync/connect/disconnect (the config file may set them).
    """
    if monitor is not None:
        clock = monitor.clock
    feed = FleetFeed(
        bus, bus_label=bus_label, include_all=include_all, clock=clock, log=log, monitor=monitor
    )
    feed.monitor.load_history(history)
    return BtmonApp(
        feed,
        clock=clock,
        ansi_color=few_colours(),
        log=log,
        log_error=log_error,
        controller=Controller(feed.monitor, timeouts=timeouts),
        probe_backend=probe_backend,
        probe_every_s=probe_every_s,
    )


def few_colours() -> bool:
    """True on 8/16-colour terminals: keep ANSI colours native there instead of letting RGB be
    rounded to the nearest of 16 (which turns yellow into red on some palettes)."""
    return Console().color_system in ("standard", "windows")
