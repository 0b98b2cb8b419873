"""Acting from the keyboard: r, R, c, d and esc against the in-process fake BlueZ.

Each test presses keys in the real app and asserts on what the operator sees (the row's step,
then its verdict), on the toasts (textual Notify messages) and on the event log's lines. The
fake runs slower than in the other Pilot tests, so that every step stays on screen long enough
to be seen; the Controller's waits are shortened where a speaker never answers (Patio).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from textual import events
from textual.message import Message
from textual.notifications import Notify

from core.bluez.control import Timeouts
from core.fleet.events import ActionEvent
from core.sim.fake_bluez import FakeBluez, SimDevice
from core.sim.scenario import build_default
from tests.conftest import FakeService
from tests.tui.helpers import (
    DEMO_ROWS,
    FIXED_CLOCK,
    fleet_loaded,
    screen_lines,
    screen_text,
    table_cells,
    until,
    verdicts,
)
from tui.app import BtmonApp, make_app
from tui.ingest import FleetUpdated
from tui.screens.confirm import ConfirmScreen
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import EventLog

pytestmark = pytest.mark.dbus

BAR = "F4:4E:FD:10:22:04"
PATIO = "F4:4E:FD:10:22:05"
GREEN_ROOM = "F4:4E:FD:10:22:06"
#: Fake BlueZ speed: a resync of Bar takes about a second, so its steps can be watched.
SPEED = 5.0
#: Patio's A2DP never comes up: wait 1 s for it instead of 8 (then BlueZ's answer is shown).
TIMEOUTS = Timeouts(transport_s=1.0)
#: Key press -> the step in the row (the issue's target; bench/action_latency.py measures the
#: whole way to the terminal).
SHOWN_WITHIN_S = 0.1
#: Seconds for a whole action to end.
ACTION_TIMEOUT_S = 15.0


@dataclass
class Run:
    """A running app with every message it dispatched."""

    app: BtmonApp
    messages: list[Message] = field(default_factory=list)

    def toasts(self) -> list[tuple[str, str, str]]:
        """(severity, title, message) of every toast so far."""
        return [
            (m.notification.severity, m.notification.title, m.notification.message)
            for m in self.messages
            if isinstance(m, Notify)
        ]

    def actions(self) -> list[ActionEvent]:
        """Every ActionEvent the render timer handed to the widgets."""
        return [
            e
            for m in self.messages
            if isinstance(m, FleetUpdated)
            for e in m.events
            if isinstance(e, ActionEvent)
        ]

    def row(self, name: str) -> str:
        """The screen line of speaker `name`'s row."""
        return next(line for line in screen_lines(self.app) if f" {name} " in line)


@pytest.fixture
async def fake(bluez_service: FakeService) -> FakeBluez:
    return await bluez_service.start(build_default, speed=SPEED)


@pytest.fixture
def run(bluez_service: FakeService) -> Run:
    return Run(make_app(bluez_service.address, clock=FIXED_CLOCK, timeouts=TIMEOUTS))


async def select(run: Run, pilot: object, name: str) -> None:
    """Move the cursor to speaker `name`'s row."""
    table = run.app.query_one(FleetTable)
    names = list(verdicts(run.app))
    table.move_cursor(row=names.index(name), animate=False)
    await pilot.pause()  # type: ignore[attr-defined]


def box_text(app: BtmonApp) -> str:
    """What the confirmation box shows (not the table behind it)."""
    box = app.screen.query_one("#confirm-box").region
    return "\n".join(line[box.x : box.right] for line in screen_lines(app)[box.y : box.bottom])


def stepping(run: Run, name: str) -> bool:
    """True while the row of `name` shows an action's step on screen."""
    return "⟳" in run.row(name)


async def test_r_shows_the_step_at_once_then_streaming(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")
        assert verdicts(run.app)["Bar"] == "connected-idle"

        table = run.app.query_one(FleetTable)
        shown: list[tuple[float, str, str]] = []
        show_step = table.show_step

        def spy(address: str, step: str) -> None:
            shown.append((time.monotonic(), address, step))
            show_step(address, step)

        table.show_step = spy  # type: ignore[method-assign]
        await pilot.press("r")
        await until(pilot, lambda: stepping(run, "Bar"), what="the step in Bar's row")
        key = next(m for m in run.messages if isinstance(m, events.Key) and m.key == "r")
        # The row says 'resync…' while the key is handled, then the Controller's own steps.
        when, address, step = shown[0]
        assert (address, step) == (BAR, "resync…")
        assert when - key.time <= SHOWN_WITHIN_S, f"the step came {when - key.time:.3f} s late"
        assert shown[1][1:] == (BAR, "disconnecting…")

        await until(
            pilot,
            lambda: verdicts(run.app)["Bar"] == "streaming",
            ACTION_TIMEOUT_S,
            "Bar streaming",
        )
        await until(pilot, lambda: bool(run.actions()), what="the action event")
        (event,) = run.actions()
        assert (event.address, event.action, event.result) == (BAR, "resync", "ok")

        # On a loaded machine A2DP may miss TIMEOUTS.transport_s and come through the
        # ConnectProfile fallback, which the message then notes before "streaming again".
        def logged(text: str) -> bool:
            return any(
                "Bar: resync ok — " in line and "streaming again (" in line
                for line in text.splitlines()
            )

        def log_text() -> str:  # the log's own lines: a toast may cover the screen's
            return "\n".join(strip.text for strip in run.app.query_one(EventLog).lines)

        await until(pilot, lambda: logged(log_text()), what="the event log line")
        assert "5 of 7 connected speakers streaming" in screen_lines(run.app)[0]
        await until(pilot, lambda: bool(run.toasts()), what="the toast")
        severity, title, message = run.toasts()[-1]
        assert (severity, title) == ("information", "Resync: done")
        assert message.startswith("Bar: resync ok — ") and "streaming again" in message


async def test_a_second_r_is_refused_with_a_toast(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")
        await pilot.press("r")
        await until(pilot, lambda: stepping(run, "Bar"), what="the first resync")
        await pilot.press("r")
        await until(pilot, lambda: bool(run.toasts()), what="the refusal")
        severity, title, message = run.toasts()[0]
        assert (severity, title) == ("warning", "Busy")
        assert message.startswith("Bar is busy: resync is still running (")
        assert "One action per speaker" in message
        await until(
            pilot, lambda: len(run.actions()) == 1, ACTION_TIMEOUT_S, "the first resync's end"
        )
        await pilot.pause(0.3)
        assert len(run.actions()) == 1, "the refused press started a second action"


async def test_d_asks_n_keeps_y_disconnects(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")

        await pilot.press("d")
        assert isinstance(run.app.screen, ConfirmScreen)
        assert "Disconnect Bar (F4:4E:FD:10:22:04)?" in box_text(run.app)
        await pilot.press("n")
        assert not isinstance(run.app.screen, ConfirmScreen)
        await pilot.pause(0.3)
        assert verdicts(run.app)["Bar"] == "connected-idle"
        assert not run.actions()

        # enter answers the focused button, "Keep connected" (the default is no); esc is no.
        for answer in ("enter", "escape"):
            await pilot.press("d", answer)
            assert not isinstance(run.app.screen, ConfirmScreen)
        await pilot.pause(0.3)
        assert verdicts(run.app)["Bar"] == "connected-idle"
        assert not run.actions()

        await pilot.press("d", "y")
        await until(
            pilot,
            lambda: verdicts(run.app)["Bar"] == "disconnected",
            ACTION_TIMEOUT_S,
            "Bar disconnected",
        )
        await until(pilot, lambda: bool(run.actions()), what="the action event")
        assert [(e.action, e.result) for e in run.actions()] == [("disconnect", "ok")]
        await until(
            pilot,
            lambda: "Bar: disconnect ok — disconnected (" in screen_text(run.app),
            what="the event log line",
        )


async def test_c_connects_green_room_retrying_a_page_timeout(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Green Room")
        assert verdicts(run.app)["Green Room"] == "disconnected"

        await pilot.press("c")
        await until(pilot, lambda: stepping(run, "Green Room"), what="the step")
        # Its first page times out (the demo's out-of-reach speaker); the retry says so.
        await until(
            pilot,
            lambda: "⟳ connecting 2/3…" in run.row("Green Room"),
            ACTION_TIMEOUT_S,
            "the second attempt",
        )
        await until(
            pilot,
            lambda: verdicts(run.app)["Green Room"] == "streaming",
            ACTION_TIMEOUT_S,
            "Green Room streaming",
        )
        await until(pilot, lambda: bool(run.actions()), what="the action event")
        (event,) = run.actions()
        assert (event.address, event.action, event.result) == (GREEN_ROOM, "connect", "ok")


async def test_c_on_a_connected_speaker_says_so(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")
        await pilot.press("c")
        await until(pilot, lambda: bool(run.toasts()), what="the toast")
        assert run.toasts()[0][2] == "Bar is already connected (r resyncs it)"
        assert not stepping(run, "Bar")


async def test_shift_r_lists_bar_and_patio_then_resyncs_them(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")

        await pilot.press("R")
        assert isinstance(run.app.screen, ConfirmScreen)
        text = box_text(run.app)
        assert "Resync 2 speakers connected without audio while others stream?" in text
        assert "◐ connected-idle  Bar  F4:4E:FD:10:22:04" in text
        assert "◌ no-a2dp  Patio  F4:4E:FD:10:22:05" in text
        for name in ("Stage Left", "Green Room", "Lobby", "Spare"):
            assert f"  {name}  " not in text, name

        await pilot.press("y")
        await until(
            pilot, lambda: stepping(run, "Bar") and stepping(run, "Patio"), what="both steps"
        )
        await until(pilot, lambda: len(run.actions()) == 2, ACTION_TIMEOUT_S, "both resyncs to end")
        outcome = {e.address: (e.action, e.result, e.detail) for e in run.actions()}
        assert outcome[BAR] == ("resync", "ok", None)
        # The demo's Patio never brings A2DP up: the failure carries BlueZ's own words.
        assert outcome[PATIO] == ("resync", "error", "br-connection-profile-unavailable")
        await until(pilot, lambda: verdicts(run.app)["Bar"] == "streaming", what="Bar streaming")
        await until(pilot, lambda: len(run.toasts()) == 2, what="two toasts")
        failed = next(t for t in run.toasts() if t[0] == "error")
        assert failed[1] == "Resync: failed"
        assert failed[2].startswith("Patio: resync failed — ")
        assert failed[2].endswith("(br-connection-profile-unavailable)")
        await until(
            pilot, lambda: "Patio: resync failed — " in screen_text(run.app), what="the log line"
        )


async def test_shift_r_runs_at_most_two_at_a_time(
    bluez_service: FakeService, fake: FakeBluez, run: Run
) -> None:
    for index in range(3):  # three more ghost-connected speakers: five to resync
        fake.add_device(
            SimDevice(f"F4:4E:FD:10:23:0{index}", f"Idle {index}", "hci1", transport_state="idle")
        )
    controller = run.app.controller
    started: list[tuple[str, int]] = []
    original = controller.start

    def counting_start(action: str, address: str) -> object:
        task = original(action, address)
        if task is not None:
            started.append((address, sum(controller.busy(a) for a in run.app.actions.running)))
        return task

    controller.start = counting_start  # type: ignore[method-assign]
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app, rows=DEMO_ROWS + 3), what="the fleet")
        await pilot.press("R", "y")
        await until(pilot, lambda: "⟳ queued" in screen_text(run.app), what="a queued row")
        await until(pilot, lambda: len(run.actions()) == 5, 3 * ACTION_TIMEOUT_S, "five ends")
        assert len(started) == 5
        # Each start happens with at most one other resync still running.
        assert max(running for _address, running in started) <= 1, started
        assert "⟳" not in screen_text(run.app)


async def test_esc_cancels_the_running_resync(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")
        await pilot.press("r")
        await until(pilot, lambda: stepping(run, "Bar"), what="the resync")
        await pilot.press("escape")
        await until(pilot, lambda: bool(run.actions()), ACTION_TIMEOUT_S, "the action event")
        (event,) = run.actions()
        assert (event.action, event.result, event.detail) == ("resync", "error", "cancelled")
        await until(pilot, lambda: not stepping(run, "Bar"), what="the step to go")
        await until(
            pilot,
            lambda: "Bar: resync cancelled after " in screen_text(run.app),
            what="the event log line",
        )
        await until(pilot, lambda: bool(run.toasts()), what="the toast")
        assert run.toasts()[-1][:2] == ("warning", "Resync: cancelled")


async def test_esc_keeps_its_meaning_on_other_screens(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")
        await pilot.press("r")
        await until(pilot, lambda: stepping(run, "Bar"), what="the resync")
        await pilot.press("question_mark")
        text = screen_text(run.app)
        assert "resync the selected speaker" in text and "cancel the selected" in text
        await pilot.press("escape")  # closes help; does not cancel the resync
        assert run.app.screen is run.app.screen_stack[0]
        await until(pilot, lambda: bool(run.actions()), ACTION_TIMEOUT_S, "the action event")
        assert run.actions()[0].result == "ok"


async def test_the_step_survives_a_snapshot_and_a_resize(fake: FakeBluez, run: Run) -> None:
    """A render tick (new snapshot) or a new column set must not paint the verdict back."""
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await select(run, pilot, "Bar")
        run.app.actions.at_once = 0  # R only queues: the step 'queued' stays still
        await pilot.press("R", "y")
        await until(pilot, lambda: "⟳ queued" in run.row("Bar"), what="Bar queued")
        fake.set_battery(PATIO, 8)  # a change: a new snapshot is drawn
        await until(pilot, lambda: table_cells(run.app, "battery")["Patio"] == "8%!", what="8%")
        assert "⟳ queued" in run.row("Bar")
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert "⟳ queued" in run.row("Bar")
        await pilot.press("escape")
        await until(pilot, lambda: not stepping(run, "Bar"), what="the queued resync dropped")
        assert "connected-idle" in run.row("Bar")
        await until(pilot, lambda: bool(run.toasts()), what="the toast")
        assert run.toasts()[-1][2] == "Bar: resync cancelled before it started"
