"""The fleet screen's keys: resync, connect, disconnect, cancel, probe, the replay's controls,
l and a. A screen owns its bindings, so Textual offers them only while the fleet is in view:
help, details and questions hide them. What it shows is FleetView's (fleet_view.py)."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.widgets import HelpPanel

from core.align import plan
from core.align.by_probe import FleetOutput
from core.align.loop import Round
from core.eventlog.store import EventStore
from core.fleet.describe import describe_align
from core.fleet.events import AlignEvent, ProbeEvent
from core.fleet.model import Speaker
from core.probe.backends import MicBackend
from core.probe.runner import Backend, ProbeFailed
from tui.actions import ActionQueue, needs_resync
from tui.alerts import Alerts
from tui.ingest import FleetFeed
from tui.keys import FLEET_BINDINGS, offered
from tui.screens.confirm import confirm_disconnect, confirm_resync_all
from tui.screens.fleet_view import FleetView
from tui.style import palette_of
from tui.widgets.panels import EventLog

#: With --probe-every, the first probe runs this long after start (the fleet is known by then).
FIRST_PROBE_S = 2.0


class FleetScreen(FleetView):
    """The fleet and its keys, which act through the Monitor (probes, the replay's clock,
    every device or only the speakers) and the ActionQueue (resync, connect, disconnect on
    the one Controller)."""

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
        keep_aligned: bool = False,
    ) -> None:
        super().__init__(feed, alerts, clock=clock, event_log=event_log, log_error=log_error)
        self.actions = actions
        # A running action's steps go straight into its row, not at the next render tick.
        actions.on_change = self._action_changed
        actions.wanted = self._still_wanted
        actions.controller.on_progress = self._on_progress
        #: Plays and records probes (a microphone; the demo's simulated room).
        self.probe_backend = probe_backend
        #: Seconds between automatic probes (--probe-every), None = only on `p`.
        self.probe_every_s = probe_every_s
        #: --keep-aligned: after each periodic probe, correct the aligned fleet's drift.
        self.keep_aligned = keep_aligned

    def on_mount(self) -> None:
        # (FleetView.on_mount runs too: Textual calls each class's handler.)
        if self.probe_every_s:
            self.set_timer(FIRST_PROBE_S, self._periodic_probe)
            self.set_interval(self.probe_every_s, self._periodic_probe)

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
        self.monitor.set_include_all(not self.include_all)
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
        elif self.actions.busy(speaker.key):
            self._refuse(speaker)
            return None
        return speaker

    def _refuse(self, speaker: Speaker) -> None:
        """One action per speaker: a second one would fight the first (the Controller refuses
        it too)."""
        address = speaker.key
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
        if not self.actions.start(action, speaker.key):
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
        speakers = [s for s in needs_resync(self.snapshot) if not self.actions.busy(s.key)]
        if not speakers:
            self.notify(
                "Nothing to resync: no speaker is connected without audio while others stream",
                timeout=4,
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.actions.enqueue("resync", [s.key for s in speakers])

        screen = confirm_resync_all(speakers, self.actions.at_once, palette_of(self.app))
        self.app.push_screen(screen, callback=answered)

    def action_cancel_action(self) -> None:
        """esc: cancel the selected speaker's action; nothing when it has none (esc is a key
        hands press out of habit, so it stays quiet then)."""
        speaker = self.selected_speaker()
        if speaker is None:
            return
        queued = self.actions.queued.get(speaker.key)
        if self.actions.cancel(speaker.key) == "queued":
            self.notify(f"{speaker.name}: {queued} cancelled before it started", timeout=4)
        # A running action ends as 'cancelled': its event brings the toast and the log line.

    def _still_wanted(self, action: str, address: str) -> bool:
        """Asked by the queue before a queued resync starts: a speaker that got its audio back
        meanwhile is left alone (resyncing it would cause the dropout we want to avoid)."""
        if action != "resync" or self.snapshot is None:
            return True
        if any(s.key == address for s in needs_resync(self.snapshot)):
            return True
        name = next((s.name for s in self.snapshot.speakers if s.key == address), address)
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
            if self.keep_aligned and not asked:
                await self._keep_aligned(event)
        if toast is not None:
            self.toast(toast)

    async def _keep_aligned(self, event: ProbeEvent) -> None:
        """--keep-aligned: a drift past the target after an alignment is corrected by at most
        1 ms per speaker (core.align.plan.keep_step), said in a toast and the log."""
        assert self.probe_backend is not None
        sinks = self.probe_backend.sinks if isinstance(self.probe_backend, MicBackend) else {}
        kept = await self.monitor.keep_aligned(event, self.probe_backend, sinks=sinks)
        if kept is not None:
            self.notify(
                describe_align(kept.to_json()).removeprefix("align: "),
                title="Align",
                timeout=5,
                markup=False,
            )

    def action_align(self) -> None:
        if self.monitor.probing:
            self.notify("A probe or an alignment is already running", timeout=3)
            return
        if not self.monitor.live:
            self.notify("This is a replay: aligning needs live speakers", timeout=4)
            return
        if isinstance(self.probe_backend, FleetOutput):
            self.run_align(self.probe_backend)  # the demo's room
            return
        if self.probe_backend is None:
            self.probe_backend = MicBackend()
        if isinstance(self.probe_backend, MicBackend):
            self.run_align_on_server(self.probe_backend)

    @work(exclusive=True, exit_on_error=False, group="probe")
    async def run_align(self, output: FleetOutput) -> None:
        """The Monitor aligns (off the event loop), a toast per round; the drift panel shows
        each round's probe; the last toast says the spread before and after."""

        assert self.probe_backend is not None
        try:
            event, left_out = await self.monitor.align(
                self.probe_backend, output, on_round=self._align_progress
            )
        except ProbeFailed as exc:
            self.notify(str(exc), title="Align failed", severity="error", markup=False)
            return
        self.notify(
            align_summary(event, left_out),
            title="Aligned" if event.result == "aligned" else "Not aligned",
            severity="information" if event.result == "aligned" else "warning",
            timeout=10,
            markup=False,
        )

    @work(exclusive=True, exit_on_error=False, group="probe")
    async def run_align_on_server(self, mic: MicBackend) -> None:
        """`A` on a real host: the Monitor aligns through the audio server's fleet output
        (btmon_fleet, a delay stage per speaker, as `btmon-tui align`), a toast per round,
        the last with the spread before and after and where to play."""
        self.notify(
            "setting up btmon_fleet and measuring each speaker in turn (the others muted); "
            "play to btmon_fleet",
            title="Align",
            timeout=5,
            markup=False,
        )
        try:
            event = await self.monitor.align_on_server(
                input_device=mic.input_device,
                source=mic.pulse_source,
                sinks=mic.sinks,
                on_round=self._align_progress,
            )
        except ProbeFailed as exc:
            self.notify(str(exc), title="Align failed", severity="error", markup=False)
            return
        self.notify(
            align_summary(event, ()),
            title="Aligned" if event.result == "aligned" else "Not aligned",
            severity="information" if event.result == "aligned" else "warning",
            timeout=10,
            markup=False,
        )

    def _align_progress(self, step: Round, verdict: plan.Verdict, planned: dict[str, int]) -> None:
        """One round's spread as a toast (called from the alignment's worker thread)."""
        spread = "?" if step.spread_ms is None else f"{step.spread_ms:.1f} ms"
        what = "before" if step.number == 0 else f"after round {step.number}"
        self.app.call_from_thread(
            self.notify, f"spread {what}: {spread}", title="Align", timeout=3, markup=False
        )

    # -- the replay's controls --------------------------------------------------------------

    def action_replay_pause(self) -> None:
        if self.replay is not None:
            self.replay.pause(not self.replay.paused)

    def action_replay_seek(self, seconds: float) -> None:
        if self.replay is None:
            return
        if seconds < 0:
            self.forget_history()
        self.replay.seek(seconds)

    def action_replay_speed(self, factor: float) -> None:
        if self.replay is not None:
            self.replay.set_speed(self.replay.speed * factor)


def align_summary(event: AlignEvent, left_out: tuple[str, ...]) -> str:
    """The last toast of an alignment: spread before and after, the delays, who was left."""
    text = describe_align(event.to_json()).removeprefix("align: ")
    if left_out:
        text += f"; not heard, left out: {', '.join(left_out)}"
    return text
