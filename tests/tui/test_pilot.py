"""Pilot tests: the real app against the in-process fake BlueZ on a private dbus-daemon.

They assert on the messages the app emits (FleetUpdated, SourceChanged) and on what the fleet
table, the fleet line and the status bar show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from dbus_next import Variant
from textual.message import Message
from textual.widgets import RichLog

from core.bluez.defs import DEVICE
from core.fleet.model import SourceState
from core.sim.fake_bluez import FakeBluez
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
from tui.app import MIN_HEIGHT, MIN_WIDTH, RENDER_INTERVAL_S, BtmonApp, make_app
from tui.ingest import FleetUpdated, SourceChanged
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import EventLog

pytestmark = pytest.mark.dbus

BAR = "F4:4E:FD:10:22:04"
#: What the default demo fleet shows, row by row (DESIGN §7).
DEMO_VERDICTS = {
    "Stage Left": "streaming",
    "Stage Right": "streaming",
    "Sub Bass": "streaming",
    "Bar": "connected-idle",
    "Green Room": "disconnected",
    "Lobby": "pending",
    "Patio": "no-a2dp",
    "Spare": "unknown",
    "Foyer": "streaming",  # stalled only where the HCI capture is read (test_snapshots)
}
#: A change in BlueZ must be on screen within this many render ticks (plus D-Bus time).
RENDER_TICKS = 5


@dataclass
class Run:
    """A running app with every message it dispatched."""

    app: BtmonApp
    messages: list[Message] = field(default_factory=list)

    def posted(self, kind: type[Message]) -> list[Message]:
        return [m for m in self.messages if isinstance(m, kind)]


@pytest.fixture
def run(bluez_service: FakeService) -> Run:
    return Run(make_app(bluez_service.address, clock=FIXED_CLOCK))


async def test_fleet_loads_with_every_verdict(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        assert verdicts(run.app) == DEMO_VERDICTS
        assert table_cells(run.app, "codec")["Sub Bass"] == "aptX LL"
        assert table_cells(run.app, "battery")["Patio"] == "9%!"
        lines = screen_lines(run.app)
        assert "4 of 7 connected speakers streaming" in lines[0]
        assert "connected without audio: Bar, Patio" in lines[0]
        # The status bar wraps to two lines when the bus path is long.
        assert any(line.startswith(" OK ") for line in lines[-3:-1])
        # Under load the source's message may land a frame after the fleet.
        await until(pilot, lambda: bool(run.posted(SourceChanged)), what="the source status")
        statuses = [m.status.state for m in run.posted(SourceChanged)]
        assert statuses[-1] == SourceState.CONNECTED
        updates = run.posted(FleetUpdated)
        assert updates, "the render timer never posted FleetUpdated"
        assert updates[-1].snapshot.counts.line() == "4 of 7 connected speakers streaming"


async def test_change_in_bluez_reaches_the_table_within_a_few_ticks(
    fake: FakeBluez, run: Run
) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        assert verdicts(run.app)["Bar"] == "connected-idle"
        seen_before = len(run.posted(FleetUpdated))

        fake.set_transport_state(BAR, "active")
        took = await until(
            pilot, lambda: verdicts(run.app)["Bar"] == "streaming", what="Bar streaming"
        )

        assert took < RENDER_TICKS * RENDER_INTERVAL_S + 0.5
        assert "5 of 7 connected speakers streaming" in screen_lines(run.app)[0]
        assert "without audio: Patio" in screen_lines(run.app)[0]
        new = run.posted(FleetUpdated)[seen_before:]
        events = [e.to_json() for m in new for e in m.events]
        assert {"type": "transport", "address": BAR, "state": "active"}.items() <= next(
            e for e in events if e["type"] == "transport"
        ).items()
        assert "Bar: streaming (SBC)" in screen_text(run.app)  # the event log line


async def test_question_mark_opens_help_and_escape_closes_it(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await pilot.press("question_mark")
        assert isinstance(run.app.screen, HelpScreen)
        assert "btmon-tui help" in screen_text(run.app) and "Keys" in screen_text(run.app)
        await pilot.press("pagedown")  # the help scrolls: the verdicts come after the keys
        await pilot.pause()
        text = screen_text(run.app)
        for expected in ("Verdicts", "connected-idle", "no-a2dp"):
            assert expected in text
        await pilot.press("escape")
        assert not isinstance(run.app.screen, HelpScreen)
        assert run.app.focused is run.app.query_one(FleetTable)


async def test_enter_opens_the_selected_speaker_and_escape_returns(
    fake: FakeBluez, run: Run
) -> None:
    async with run.app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await pilot.press("down", "down", "down")  # row 4: Bar
        table = run.app.query_one(FleetTable)
        assert table.selected_path is not None and table.selected_path.endswith("F4_4E_FD_10_22_04")

        await pilot.press("enter")
        assert isinstance(run.app.screen, DetailScreen)
        assert run.app.screen.path == table.selected_path
        await until(pilot, lambda: "Bar  F4:4E:FD:10:22:04" in screen_text(run.app), what="detail")
        text = screen_text(run.app)
        assert "◐ connected-idle" in text
        assert "shows Connected but gets no audio" in text
        assert "idle, SBC" in text

        # The open detail follows BlueZ like the table does.
        fake.set_transport_state(BAR, "active")
        await until(pilot, lambda: "active, SBC" in screen_text(run.app), what="detail update")
        assert "● streaming" in screen_text(run.app)

        await pilot.press("escape")
        assert not isinstance(run.app.screen, DetailScreen)
        assert table.selected_path is not None and table.selected_path.endswith("F4_4E_FD_10_22_04")


async def test_l_hides_and_shows_the_event_log(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        log = run.app.query_one(EventLog)
        assert log.display and log.region.height > 0
        await pilot.press("l")
        await pilot.pause()
        assert not log.display
        assert log.region.height == 0
        await pilot.press("l")
        await pilot.pause()
        assert log.display and log.region.height > 0


def add_keyboard(fake: FakeBluez) -> None:
    """A paired keyboard: no A2DP sink, not audio class, so not a speaker (DESIGN §3)."""
    fake.tree.add_object(
        "/org/bluez/hci0/dev_11_22_33_44_55_66",
        {
            DEVICE: {
                "Address": Variant("s", "11:22:33:44:55:66"),
                "Name": Variant("s", "Desk Keyboard"),
                "Alias": Variant("s", "Desk Keyboard"),
                "Class": Variant("u", 0x002540),
                "Paired": Variant("b", True),
                "Connected": Variant("b", True),
                "UUIDs": Variant("as", ["00001124-0000-1000-8000-00805f9b34fb"]),
                "Adapter": Variant("o", "/org/bluez/hci0"),
            }
        },
    )


async def test_a_toggles_every_paired_device(fake: FakeBluez, run: Run) -> None:
    add_keyboard(fake)
    async with run.app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        assert "Desk Keyboard" not in verdicts(run.app)

        await pilot.press("a")
        assert run.app.feed.monitor.state.include_all
        await until(pilot, lambda: "Desk Keyboard" in verdicts(run.app), what="the keyboard row")
        # The keyboard and the demo's own non-speaker, the Ops Phone.
        assert "Ops Phone" in verdicts(run.app)
        # Plus the neighbour's unpaired speaker, which only `a` lists.
        assert run.app.query_one(FleetTable).row_count == DEMO_ROWS + 3
        await until(pilot, lambda: "Showing every device" in screen_text(run.app), what="toast")

        await pilot.press("a")
        assert not run.app.feed.monitor.state.include_all
        await until(pilot, lambda: "Desk Keyboard" not in verdicts(run.app), what="speakers only")
        assert run.app.query_one(FleetTable).row_count == DEMO_ROWS


async def test_bluez_going_away_shows_waiting_and_unknown(
    bluez_service: FakeService, fake: FakeBluez, run: Run
) -> None:
    async with run.app.run_test(size=(100, 30), message_hook=run.messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")

        await bluez_service.stop()
        await until(
            pilot,
            lambda: set(verdicts(run.app).values()) == {"unknown"},
            what="every verdict unknown",
        )
        await until(
            pilot,
            lambda: any(" WAITING " in line for line in screen_lines(run.app)[-3:]),
            what="WAITING",
        )
        assert run.posted(SourceChanged)[-1].status.state == SourceState.WAITING
        assert "fleet state unknown" in screen_lines(run.app)[0]
        assert "connected speakers streaming" not in screen_lines(run.app)[0]

        # bluetoothd comes back: the app follows it without a restart.
        await bluez_service.start(build_default)
        await until(pilot, lambda: verdicts(run.app) == DEMO_VERDICTS, what="the fleet again")
        await until(
            pilot,
            lambda: any(line.startswith(" OK ") for line in screen_lines(run.app)[-3:]),
            what="OK",
        )
        assert run.posted(SourceChanged)[-1].status.state == SourceState.CONNECTED


@pytest.mark.parametrize(
    "size", [(MIN_WIDTH - 1, 24), (100, MIN_HEIGHT - 1), (40, 8)], ids=lambda s: f"{s[0]}x{s[1]}"
)
async def test_small_terminal_says_so(fake: FakeBluez, run: Run, size: tuple[int, int]) -> None:
    width, height = size
    async with run.app.run_test(size=size) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await pilot.pause()
        text = screen_text(run.app)
        assert f"Terminal is {width}×{height}" in text
        assert f"{MIN_WIDTH}×{MIN_HEIGHT}" in text
        assert "Stage Left" not in text

        # Growing the window brings the fleet back (and shrinking hides it again).
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        text = screen_text(run.app)
        assert "Terminal is" not in text
        assert "Stage Left" in text
        await pilot.resize_terminal(width, height)
        await pilot.pause()
        assert f"Terminal is {width}×{height}" in screen_text(run.app)


async def test_minimum_size_still_shows_speakers(fake: FakeBluez, run: Run) -> None:
    async with run.app.run_test(size=(MIN_WIDTH, MIN_HEIGHT)) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await pilot.pause()
        text = screen_text(run.app)
        assert "Terminal is" not in text
        # The log gives up rows first: at least half the fleet stays in view.
        visible = [name for name in DEMO_VERDICTS if name in text]
        assert len(visible) >= DEMO_ROWS // 2, text


async def test_80x24_shows_every_row_without_horizontal_scrolling(
    fake: FakeBluez, run: Run
) -> None:
    async with run.app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: fleet_loaded(run.app), what="the demo fleet")
        await pilot.pause()
        table = run.app.query_one(FleetTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert table.virtual_size.height <= table.scrollable_content_region.height
        assert not table.show_horizontal_scrollbar
        rows = screen_lines(run.app)[2 : 2 + DEMO_ROWS]  # below the fleet line and header
        for row, (name, verdict) in zip(rows, DEMO_VERDICTS.items(), strict=True):
            assert f" {verdict} " in row and f" {name} " in row, row
        # The last narrow column (Drops) is whole: each row ends with its count.
        assert all(row.rstrip()[-1].isdigit() for row in rows), "Drops column cut"
        header = screen_lines(run.app)[1]
        assert header.rstrip().endswith("Drops"), header
        # The event log is a RichLog that must not scroll sideways either.
        log = run.app.query_one(RichLog)
        assert not log.show_horizontal_scrollbar
