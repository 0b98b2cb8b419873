"""The fleet view: the fleet line, the table with the selected speaker beside it, the drift
panel, the event log and the status bar, and the fleet's keys (resync, connect, disconnect,
cancel, probe, the replay's controls, l, a). As a screen it owns its bindings, so Textual
offers them only while the fleet is in view: help, details and questions hide them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Footer, HelpPanel, Static

from core.events import Event
from core.model import DriftSummary, DropoutSummary, FleetSnapshot, Speaker
from core.monitor import Monitor
from core.probe.backends import MicBackend
from core.probe.runner import Backend, ProbeFailed
from core.replay import ReplayMonitor
from core.store import EventStore
from tui.actions import ActionQueue, needs_resync
from tui.alerts import Alerts, Toast
from tui.ingest import FleetFeed
from tui.keys import FLEET_BINDINGS, offered
from tui.layout import (
    DRIFT_PANEL_HEIGHT,
    SIDE_PANEL_WIDTH,
    side_panel_width,
    too_small,
    too_small_text,
)
from tui.screens.confirm import confirm_disconnect, confirm_resync_all
from tui.screens.detail import DetailScreen
from tui.style import palette_of
from tui.widgets.drift import DriftPanel
from tui.widgets.fleet_line import FleetLine, replay_banner
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import DetailPanel, EventLog, StatusBar

#: With --probe-every, the first probe runs this long after start (the fleet is known by then).
FIRST_PROBE_S = 2.0


class FleetScreen(Screen[None]):
    """The fleet, kept current by the app (`show` for each new snapshot, `fit` on resize).

    Its keys act through the Monitor (probes, the replay's clock, every device or only the
    speakers) and the ActionQueue (resync, connect, disconnect on the one Controller)."""

    BINDINGS = FLEET_BINDINGS

    def __init__(
        self,
        feed: FleetFeed,
        actions: ActionQueue,
        alerts: Alerts,
        *,
        clock: Callable[[], float],
        event_log: EventStore | None = None,
        log_error: str = "",
        probe_backend: Backend | None = None,
        probe_every_s: float | None = None,
    ) -> None:
        super().__init__()
        self.feed = feed
        self.monitor: Monitor = feed.monitor
        #: The monitor again when it replays a log (its clock can pause, seek, speed up).
        self.replay = self.monitor if isinstance(self.monitor, ReplayMonitor) else None
        self.actions = actions
        self.alerts = alerts
        self.clock = clock
        #: The event log (None when off) and why it could not open: the status bar says.
        self.event_log = event_log
        self.log_error = log_error
        #: Plays and records probes (a microphone; the demo's simulated room).
        self.probe_backend = probe_backend
        #: Seconds between automatic probes (--probe-every), None = only on `p`.
        self.probe_every_s = probe_every_s
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
        # A running action's steps go straight into its row, not at the next render tick.
        self.actions.on_change = self._action_changed
        self.actions.wanted = self._still_wanted
        self.actions.controller.on_progress = self._on_progress
        if self.probe_every_s:
            self.set_timer(FIRST_PROBE_S, self._periodic_probe)
            self.set_interval(self.probe_every_s, self._periodic_probe)
        if self.replay is not None:
            self.query_one(EventLog).names.update(self.replay.names)
        self.query_one(FleetTable).focus()
        self.fit(self.app.size)

    # -- showing the fleet ------------------------------------------------------------------

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
            snapshot.source, len(self.feed.warnings()), self.log_problem(), snapshot.hci_status
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
            panel.show(snapshot.drift, snapshot.probing, snapshot.t)

    def _speaker(self, path: str | None) -> tuple[Speaker | None, DropoutSummary | None]:
        if self.snapshot is None or path is None:
            return None, None
        speaker = next((s for s in self.snapshot.speakers if s.path == path), None)
        summary = self.snapshot.dropouts.get(speaker.address) if speaker else None
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

    # -- sizes ------------------------------------------------------------------------------

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

    # -- which keys are offered -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A replay offers its controls and no actions; esc cancels only while an action
        runs and closes the keys panel first. Under another screen (help, a question) Textual
        already sends the fleet no keys; saying False too keeps them out of this screen's
        footer, which shows dimmed behind a dialog: it lists only what works (? and q)."""
        if self.app.screen is not self:
            return False
        return self.offers(action)

    def offers(self, action: str) -> bool:
        """Whether the fleet view offers `action` now (its key and its Ctrl+P command)."""
        return offered(
            action,
            replay=self.replay is not None,
            acting=bool(self.actions.running or self.actions.queued),
            keys_panel=bool(self.query(HelpPanel)),
        )

    @property
    def include_all(self) -> bool:
        """Whether every device shows, or only the speakers."""
        return self.monitor.state.include_all

    # -- the keys ---------------------------------------------------------------------------

    def action_hide_keys(self) -> None:
        self.app.action_hide_help_panel()

    def action_toggle_log(self) -> None:
        self.query_one(EventLog).toggle_class("hidden")

    def action_toggle_all(self) -> None:
        self.monitor.mirror.set_include_all(not self.include_all)
        self.notify(
            "Showing every device (unpaired ones marked, never counted)"
            if self.include_all
            else "Showing speakers only (A2DP sinks)",
            timeout=3,
        )

    def action_live_only(self) -> None:
        self._live()  # says that a replay cannot act

    def _live(self) -> bool:
        """False (and says so) when actions cannot reach BlueZ: a replay shows the past."""
        if not self.monitor.live:
            self.notify("This is a replay: actions work on live speakers only", timeout=4)
            return False
        return True

    def _target(self) -> Speaker | None:
        """The selected speaker, when it can be acted on now; else None, after saying why."""
        if not self._live():
            return None
        speaker = self.selected_speaker()
        if speaker is None:
            self.notify("No speaker selected", timeout=3)
        elif self.actions.busy(speaker.address):
            self._refuse(speaker)
            return None
        return speaker

    def _refuse(self, speaker: Speaker) -> None:
        """One action per speaker: a second one would fight the first (the Controller refuses
        it too)."""
        address = speaker.address
        running = self.actions.running.get(address) or self.actions.queued.get(address)
        self.notify(
            f"{speaker.name} is busy: {running or 'an action'} is still running "
            f"({self.actions.step(address) or 'ending'}). One action per speaker at a time; "
            "esc cancels it.",
            title="Busy",
            severity="warning",
            timeout=5,
            markup=False,
        )

    def _start(self, action: str, speaker: Speaker) -> None:
        if not self.actions.start(action, speaker.address):
            self._refuse(speaker)

    def action_resync(self) -> None:
        speaker = self._target()
        if speaker is not None:
            self._start("resync", speaker)

    def action_connect(self) -> None:
        speaker = self._target()
        if speaker is None:
            return
        if speaker.connected:
            self.notify(f"{speaker.name} is already connected (r resyncs it)", timeout=4)
            return
        self._start("connect", speaker)

    def action_disconnect(self) -> None:
        speaker = self._target()
        if speaker is None:
            return
        if not speaker.connected:
            self.notify(f"{speaker.name} is not connected", timeout=4)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._start("disconnect", speaker)

        self.app.push_screen(confirm_disconnect(speaker), callback=answered)

    def action_resync_all(self) -> None:
        if not self._live() or self.snapshot is None:
            return
        speakers = [s for s in needs_resync(self.snapshot) if not self.actions.busy(s.address)]
        if not speakers:
            self.notify(
                "Nothing to resync: no speaker is connected without audio while others stream",
                timeout=4,
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.actions.enqueue("resync", [s.address for s in speakers])

        screen = confirm_resync_all(speakers, self.actions.at_once, palette_of(self.app))
        self.app.push_screen(screen, callback=answered)

    def action_cancel_action(self) -> None:
        """esc: cancel the selected speaker's action; nothing when it has none (esc is a key
        hands press out of habit, so it stays quiet then)."""
        speaker = self.selected_speaker()
        if speaker is None:
            return
        queued = self.actions.queued.get(speaker.address)
        if self.actions.cancel(speaker.address) == "queued":
            self.notify(f"{speaker.name}: {queued} cancelled before it started", timeout=4)
        # A running action ends as 'cancelled': its event brings the toast and the log line.

    def _still_wanted(self, action: str, address: str) -> bool:
        """Asked by the queue before a queued resync starts: a speaker that got its audio back
        meanwhile is left alone (resyncing it would cause the dropout we want to avoid)."""
        if action != "resync" or self.snapshot is None:
            return True
        if any(s.address == address for s in needs_resync(self.snapshot)):
            return True
        name = next((s.name for s in self.snapshot.speakers if s.address == address), address)
        self.notify(f"{name} no longer needs a resync: skipped", timeout=4)
        return False

    def _on_progress(self, address: str, step: str) -> None:
        """The Controller's step for a running action ('' as it ends): into its row at once,
        not at the next render tick."""
        table = self._fleet_table()
        if table is not None:
            table.show_step(address, step)

    def _action_changed(self, address: str) -> None:
        """An action started, ended or left the queue: show it in its row (and esc in the
        footer while any runs)."""
        self.refresh_bindings()
        table = self._fleet_table()
        if table is not None:
            table.show_step(address, self.actions.step(address))

    def _fleet_table(self) -> FleetTable | None:
        """The fleet table; None while the app closes (an action may end after its screen)."""
        if not self.app.screen_stack:
            return None
        try:
            return self.query_one(FleetTable)
        except NoMatches:
            return None

    # -- probes -----------------------------------------------------------------------------

    def action_probe(self) -> None:
        if self.monitor.probing:
            self.notify("A probe is already running", timeout=3)
            return
        if not self.monitor.live:
            self.notify("This is a replay: probes need live speakers", timeout=4)
            return
        self.run_probe(asked=True)

    def _periodic_probe(self) -> None:
        if not self.monitor.probing:
            self.run_probe(asked=False)

    @work(exclusive=True, exit_on_error=False, group="probe")
    async def run_probe(self, asked: bool) -> None:
        """The Monitor runs the probe (off the event loop); the drift panel shows it; a toast
        says what is new (`asked`: the operator pressed p, so even old news is said)."""
        if self.probe_backend is None:
            self.probe_backend = MicBackend()
        try:
            event = await self.monitor.probe(self.probe_backend)
        except ProbeFailed as exc:
            toast = self.alerts.probe_failed(str(exc), asked=asked)
        else:
            toast = self.alerts.probed(event, asked=asked)
        if toast is not None:
            self.toast(toast)

    # -- the replay's controls --------------------------------------------------------------

    def action_replay_pause(self) -> None:
        if self.replay is not None:
            self.replay.pause(not self.replay.paused)

    def action_replay_seek(self, seconds: float) -> None:
        if self.replay is None:
            return
        if seconds < 0:
            # Back: the replay plays again from its first record up to there; what the log
            # and the detail view showed after that moment has not happened yet.
            self.query_one(EventLog).clear()
            self.feed.forget()
            self.alerts.forget()
        self.replay.seek(seconds)

    def action_replay_speed(self, factor: float) -> None:
        if self.replay is not None:
            self.replay.set_speed(self.replay.speed * factor)
