"""The action keys of the fleet view (r, R, c, d, esc): they start tasks on the Controller
and show each step in the speaker's row; a mixin of BtmonApp, which composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches

from core.model import Speaker
from tui.actions import needs_resync, running_question
from tui.screens.confirm import ConfirmScreen, confirm_disconnect, confirm_quit, confirm_resync_all
from tui.style import palette_of
from tui.widgets.fleet_table import FleetTable

if TYPE_CHECKING:
    from core.bluez.control import Controller
    from tui.actions import ActionQueue
    from tui.ingest import FleetFeed


class ActionKeys:
    """r resync, R resync every silent speaker, c connect, d disconnect, esc cancel; q and
    ctrl+c quit, asking first while an action runs."""

    # Provided by BtmonApp.
    controller: Controller
    actions: ActionQueue
    feed: FleetFeed
    notify: Any
    query_one: Any
    query: Any
    push_screen: Any
    refresh_bindings: Any
    exit: Any
    screen: Any
    snapshot: Any
    _speaker: Any

    def selected_speaker(self) -> Speaker | None:
        speaker, _summary = self._speaker(self.query_one(FleetTable).selected_path)
        return speaker

    def _live(self) -> bool:
        """False (and says so) when actions cannot reach BlueZ: a replay shows the past."""
        if not self.feed.monitor.live:
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

        self.push_screen(confirm_disconnect(speaker), callback=answered)

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

        screen = confirm_resync_all(speakers, self.actions.at_once, palette_of(self))
        self.push_screen(screen, callback=answered)

    async def action_quit(self) -> None:
        """q, ctrl+c, ctrl+q: quit at once, unless an action runs: quitting would cancel it
        half-way (a resync leaves its speaker disconnected), so ask first, No by default."""
        names = {s.address: s.name for s in self.snapshot.speakers} if self.snapshot else {}
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
        if not self.screen_stack:
            return None
        try:
            return self.query_one(FleetTable)
        except NoMatches:
            return None
