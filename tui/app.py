"""BtmonApp composes the fleet view from snapshots pulled on a steady timer; it computes nothing."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Mapping

from rich.console import Console
from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.geometry import Size
from textual.messages import ExitApp
from textual.widgets import Footer, Static

from core.bluez.control import Controller, Timeouts
from core.model import DriftSummary, DropoutSummary, FleetSnapshot, SourceStatus, Speaker
from core.monitor import Monitor
from core.probe.runner import Backend
from core.store import EventStore
from tui.action_keys import ActionKeys
from tui.actions import ActionQueue
from tui.alerts import alerts
from tui.commands import FleetCommands
from tui.ingest import FleetFeed, FleetUpdated, SourceChanged
from tui.keys import APP_BINDINGS, FLEET_ACTIONS, offered
from tui.layout import (
    DRIFT_PANEL_HEIGHT,
    MIN_HEIGHT,
    MIN_WIDTH,
    SIDE_PANEL_WIDTH,
    side_panel_width,
    too_small,
    too_small_text,
)
from tui.probe_keys import ProbeKeys
from tui.replay_keys import ReplayKeys, replay_banner
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.style import palette_of
from tui.widgets.drift import DriftPanel
from tui.widgets.fleet_line import FleetLine
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import DetailPanel, EventLog, StatusBar

__all__ = ["MIN_HEIGHT", "MIN_WIDTH", "RENDER_INTERVAL_S", "BtmonApp", "make_app"]

#: Render rate: the screen is repainted from a snapshot at most this often (DESIGN §2);
#: 10 Hz keeps change -> screen latency well under 250 ms while bursts coalesce.
RENDER_INTERVAL_S = 0.1
#: gc thresholds while the app runs (CPython's default is 700, 10, 10); measured in bench/.
GC_THRESHOLDS = (2000, 10, 100)
#: Written as the app ends: default colours, cursor home, screen erased.
BLANK_SCREEN = "\x1b[0m\x1b[H\x1b[2J"
#: With --probe-every, the first probe runs this long after start (the fleet is known by then).
FIRST_PROBE_S = 2.0


class BtmonApp(ActionKeys, ProbeKeys, ReplayKeys, App[int]):
    """btmon-tui's live fleet view."""

    CSS_PATH = "app.tcss"
    TITLE = "btmon-tui"
    #: Ctrl+P offers the app's own commands too (resync Bar, probe now, show all devices).
    COMMANDS = App.COMMANDS | {FleetCommands}
    BINDINGS = APP_BINDINGS

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
        #: Whether the table has a Media column (an HCI source runs): it needs more room.
        self._media = False
        #: Every name known for an address: a replay's recorded names, then the fleet's.
        self.names: dict[str, str] = dict(self.replay.names) if self.replay else {}

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
        self.query_one(EventLog).names.update(self.names)
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
        self.names.update({s.address: s.name for s in snapshot.speakers})
        with self.batch_update():
            self.query_one(FleetLine).show(snapshot, self._banner(snapshot))
            self.query_one(FleetTable).show(snapshot)
            self.query_one(EventLog).add(message.events, snapshot.t)
            self.query_one(StatusBar).show(
                snapshot.source,
                len(self.feed.warnings()),
                self._log_problem(),
                snapshot.hci_status,
            )
            self._show_detail()
            self._show_drift(snapshot)
            media = bool(snapshot.hci_status)
            if self.screen.has_class("too-small") or media != self._media:
                self._apply_size()  # the notice carries the fleet's line; Media widens it
        if snapshot.source != self._source:
            self._source = snapshot.source
            self.post_message(SourceChanged(snapshot.source))
        for toast in alerts(snapshot, message.events, self.names, self._warned_due):
            self.notify(
                toast.message,
                title=toast.title,
                severity=toast.severity,
                timeout=toast.timeout,
                markup=False,
            )

    def _banner(self, snapshot: FleetSnapshot) -> Text | None:
        """'REPLAY …' at the top of a replay; None live."""
        if self.replay is None:
            return None
        return replay_banner(self.replay, snapshot.t, time.time(), palette_of(self))

    def forget_history(self) -> None:
        """Empty the log and the detail view's events (a replay going back in time)."""
        self.query_one(EventLog).clear()
        self.feed.forget()
        self._warned_due.clear()

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
        fleet_view = self.screen_stack[0]  # the notice and the panels live there
        small = too_small(width, height)
        for screen in self.screen_stack:  # each screen's toasts hide while it is too small
            screen.set_class(small, "too-small")
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
        if not small and self.screen is fleet_view:
            # The table loses focus while hidden (too small): take it back, so its keys
            # (⏎ Details) stay in the footer after the terminal grows again.
            self.call_after_refresh(self._refocus)

    def _refocus(self) -> None:
        if self.screen is self.screen_stack[0] and self.screen.focused is None:
            self.query_one(FleetTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Toggles and actions act on the fleet view only: hide them on other screens (where
        esc keeps its meaning: close, back, no)."""
        if self.screen is not self.screen_stack[0] and action in FLEET_ACTIONS:
            return False
        return self.offers(action)

    def offers(self, action: str) -> bool:
        """Whether the fleet view offers `action` now (its key and its Ctrl+P command)."""
        return offered(
            action,
            replay=self.replay is not None,
            acting=bool(self.actions.running or self.actions.queued),
            keys_panel=bool(self.screen.query("HelpPanel")),
        )

    def action_live_only(self) -> None:
        self._live()  # says that a replay cannot act

    def action_hide_keys(self) -> None:
        self.action_hide_help_panel()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_log(self) -> None:
        self.query_one(EventLog).toggle_class("hidden")

    def action_toggle_all(self) -> None:
        monitor = self.feed.monitor
        monitor.mirror.set_include_all(not monitor.state.include_all)
        self.notify(
            "Showing every device (unpaired ones marked, never counted)"
            if monitor.state.include_all
            else "Showing speakers only (A2DP sinks)",
            timeout=3,
        )

    def on_exit_app(self, _message: ExitApp) -> None:
        """Leave the alternate screen blank: after a resize, tmux (3.3a) moves what it still
        shows into the scrollback and rewraps the shell's lines as the app leaves it. This
        runs just before Textual stops repainting (its own handler of the same message).
        Not after a hang-up or a kill (return code 128 + signal): a closed terminal takes no
        more output, and a write would wait for it for ever."""
        if self._driver is not None and not self.is_headless and not self.return_code:
            self._driver.write(BLANK_SCREEN)

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
