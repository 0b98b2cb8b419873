"""BtmonApp starts the fleet view and hands it snapshots pulled on a steady timer; it computes
nothing. Its own keys work on every screen (help, quit); the fleet's are the fleet screen's."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Mapping

from rich.console import Console
from textual import events, on, work
from textual.app import App
from textual.geometry import Size
from textual.messages import ExitApp
from textual.screen import Screen

from core.bluez.control import Controller, Timeouts
from core.eventlog.replay import ReplayMonitor
from core.eventlog.store import EventStore
from core.fleet.model import FleetSnapshot, SourceStatus
from core.hosts import Acting, RemoteHost, route_actions
from core.metrics import MetricsServer, on_loop
from core.monitor import Monitor
from core.probe.runner import Backend
from tui.actions import ActionQueue, running_question
from tui.alerts import Alerts
from tui.commands import FleetCommands
from tui.ingest import FleetFeed, FleetUpdated, SourceChanged
from tui.keys import APP_BINDINGS
from tui.layout import MIN_HEIGHT, MIN_WIDTH, too_small
from tui.screens.confirm import ConfirmScreen, confirm_quit
from tui.screens.fleet import FleetScreen
from tui.screens.help import HelpScreen

__all__ = ["MIN_HEIGHT", "MIN_WIDTH", "RENDER_INTERVAL_S", "BtmonApp", "make_app"]

#: Render rate: the screen is repainted from a snapshot at most this often (DESIGN §2);
#: 10 Hz keeps change -> screen latency well under 250 ms while bursts coalesce.
RENDER_INTERVAL_S = 0.1
#: gc thresholds while the app runs (CPython's default is 700, 10, 10); measured in bench/.
GC_THRESHOLDS = (2000, 10, 100)
#: Written as the app ends: default colours, cursor home, screen erased.
BLANK_SCREEN = "\x1b[0m\x1b[H\x1b[2J"


def _no_one(_address: str) -> None:
    """The action queue's listener until the fleet screen follows it."""


class BtmonApp(App[int]):
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
        controller: Acting | None = None,
        probe_backend: Backend | None = None,
        probe_every_s: float | None = None,
        metrics: MetricsServer | None = None,
        keep_aligned: bool = False,
    ) -> None:
        super().__init__(ansi_color=ansi_color)
        #: `--metrics`: bound by the launcher, served from this app's loop while it runs.
        self.metrics = metrics
        #: The one Controller: actions run as tasks on this app's loop, never in widgets.
        self.controller: Acting = controller or Controller(feed.monitor)
        #: Actions started from the fleet view; quitting asks first while one runs.
        self.actions = ActionQueue(self.controller, on_change=_no_one)
        self.feed = feed
        self.clock = clock
        self.snapshot: FleetSnapshot | None = None
        self._source: SourceStatus | None = None
        monitor = feed.monitor
        replay = monitor if isinstance(monitor, ReplayMonitor) else None
        #: The fleet view: the first screen, under help, details and questions.
        self.fleet = FleetScreen(
            feed,
            self.actions,
            Alerts(replay.names if replay is not None else None),
            clock=clock,
            event_log=log,
            log_error=log_error,
            probe_backend=probe_backend,
            probe_every_s=probe_every_s,
            keep_aligned=keep_aligned,
        )

    def get_default_screen(self) -> Screen[None]:
        return self.fleet

    def on_mount(self) -> None:
        # Full collections of Textual's many short-lived objects stalled the loop for
        # 100-280 ms under load (bench/RESULTS.md problem 1): freeze what start-up built and
        # collect the young generation less often.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.run_feed()
        self.set_interval(RENDER_INTERVAL_S, self.pull)
        if self.metrics is not None:
            self.metrics.serve(on_loop(self.feed.monitor, asyncio.get_running_loop()))

    @work(exclusive=True, exit_on_error=False, group="feed")
    async def run_feed(self) -> None:
        await self.feed.run()

    def pull(self) -> None:
        """Timer: hand the newest snapshot (if any) to the fleet view via a message."""
        update = self.feed.pull()
        if update is not None:
            self.post_message(FleetUpdated(*update))
        self.fleet.poll(updated=update is not None)

    @on(FleetUpdated)
    def show_fleet(self, message: FleetUpdated) -> None:
        snapshot = message.snapshot
        self.snapshot = snapshot
        if snapshot.source != self._source:
            self._source = snapshot.source
            self.post_message(SourceChanged(snapshot.source))
        self.fleet.show(snapshot, message.events)

    def on_resize(self, event: events.Resize) -> None:
        # This handler runs before App._on_resize stores the new size: use the event's.
        self._apply_size(event.size)

    def _apply_size(self, size: Size) -> None:
        small = too_small(*size)
        for screen in self.screen_stack:  # each screen's toasts hide while it is too small
            screen.set_class(small, "too-small")
        if self.fleet.is_mounted:  # else it fits itself to the app's size as it mounts
            self.fleet.fit(size)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """q, ctrl+c, ctrl+q: quit at once, unless an action runs: quitting would cancel it
        half-way (a resync leaves its speaker disconnected), so ask first, No by default."""
        names = {s.key: s.name for s in self.snapshot.speakers} if self.snapshot else {}
        question = running_question(self.actions.running, self.actions.queued, names)
        if question is None:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen) and self.screen.kind == "quit":
            return  # already asking: y quits, anything else keeps running

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(confirm_quit(question), callback=answered)

    def on_exit_app(self, _message: ExitApp) -> None:
        """Leave the alternate screen blank: after a resize, tmux (3.3a) moves what it still
        shows into the scrollback and rewraps the shell's lines as the app leaves it. This
        runs just before Textual stops repainting (its own handler of the same message).
        Not after a hang-up or a kill (return code 128 + signal): a closed terminal takes no
        more output, and a write would wait for it for ever."""
        if self._driver is not None and not self.is_headless and not self.return_code:
            self._driver.write(BLANK_SCREEN)

    def on_unmount(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        # Closing mid-action: each running action ends as cancelled (and is logged so).
        self.controller.on_progress = None
        self.actions.on_change = _no_one
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
    metrics: MetricsServer | None = None,
    keep_aligned: bool = False,
) -> BtmonApp:
    """The one app factory, used by the command line, the tests and the screenshot script.

    `history`: recorded dropout records (from the event log, or the demo's seed) to start with.
    `timeouts`: per-step limits of resync/connect/disconnect (the config file may set them).
    `metrics`: a bound `--metrics` server, served while the app runs and closed as it ends.
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
        controller=_acting(feed.monitor, Controller(feed.monitor, timeouts=timeouts)),
        probe_backend=probe_backend,
        probe_every_s=probe_every_s,
        metrics=metrics,
        keep_aligned=keep_aligned,
    )


def _acting(monitor: Monitor | ReplayMonitor, local: Controller) -> Acting:
    """The app's actions: on this machine's BlueZ, or each on its speaker's host."""
    hosts = [s for s in monitor.sources if isinstance(s, RemoteHost)]
    here = local if monitor.device_calls is not None else None
    routed = route_actions(here, hosts, monitor.publish, monitor.clock)
    return routed if routed is not None else local


def few_colours() -> bool:
    """True on 8/16-colour terminals: keep ANSI colours native there instead of letting RGB be
    rounded to the nearest of 16 (which turns yellow into red on some palettes)."""
    return Console().color_system in ("standard", "windows")
