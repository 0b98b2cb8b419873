"""The fleet table repaints only what changed: one speaker's change redraws that row alone."""

from __future__ import annotations

import dataclasses
from collections import Counter

from textual.app import App, ComposeResult
from textual.strip import Strip

from core.fleet.model import FleetSnapshot, SourceState, SourceStatus, Speaker, Transport
from tests.fleet.builders import plain_speaker
from tui.widgets.fleet_table import FleetTable

T = 1795809600.0
SPEAKERS = 30


def speaker(index: int, battery: int = 80) -> Speaker:
    return plain_speaker(
        f"10:00:00:00:00:{index:02X}",
        f"Speaker {index:03d}",
        T,
        transport=Transport("/t", "active", "SBC", 150.0, 100),
        battery=battery,
    )


def snapshot(speakers: tuple[Speaker, ...], t: float = T) -> FleetSnapshot:
    return FleetSnapshot(
        t=t,
        speakers=speakers,
        adapters=(),
        source=SourceStatus(SourceState.CONNECTED, ""),
    )


class TableApp(App[None]):
    CSS = "FleetTable { width: 1fr; height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield FleetTable()


class LineCounter:
    """Counts FleetTable.render_line calls per line (y within the widget)."""

    def __init__(self, table: FleetTable) -> None:
        self.lines: Counter[int] = Counter()
        render_line = table.render_line

        def counted(y: int) -> Strip:
            self.lines[y] += 1
            return render_line(y)

        table.render_line = counted  # type: ignore[method-assign]


def screen_row(app: App[None], y: int) -> str:
    return app.screen._compositor.render_strips()[y].text


async def test_one_speaker_changed_repaints_only_its_row() -> None:
    app = TableApp()
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(FleetTable)
        fleet = tuple(speaker(i) for i in range(SPEAKERS))
        table.show(snapshot(fleet))
        await pilot.pause()
        counter = LineCounter(table)
        changed = 4
        fleet = tuple(speaker(i, battery=5) if i == changed else s for i, s in enumerate(fleet))
        table.show(snapshot(fleet, T + 1))
        await pilot.pause()
        row_y = changed + 1  # under the header
        assert dict(counter.lines) == {row_y: 1}
        assert "5%!" in screen_row(app, row_y)
        assert "5%!" not in screen_row(app, row_y + 1)


async def test_a_change_out_of_view_repaints_nothing() -> None:
    app = TableApp()
    async with app.run_test(size=(120, 10)) as pilot:
        table = app.query_one(FleetTable)
        fleet = tuple(speaker(i) for i in range(SPEAKERS))
        table.show(snapshot(fleet))
        await pilot.pause()
        counter = LineCounter(table)
        hidden = SPEAKERS - 1
        fleet = tuple(speaker(i, battery=5) if i == hidden else s for i, s in enumerate(fleet))
        table.show(snapshot(fleet, T + 1))
        await pilot.pause()
        assert not counter.lines
        assert str(table.get_cell(fleet[hidden].path, "battery")) == "5%!"


async def test_cursor_move_repaints_the_two_rows() -> None:
    app = TableApp()
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(FleetTable)
        table.show(snapshot(tuple(speaker(i) for i in range(SPEAKERS))))
        table.focus()
        await pilot.pause()
        counter = LineCounter(table)
        await pilot.press("down")
        await pilot.pause()
        assert set(counter.lines) == {1, 2}
        assert table.selected_path == speaker(1).path


async def test_unchanged_snapshot_repaints_nothing() -> None:
    app = TableApp()
    async with app.run_test(size=(120, 20)) as pilot:
        table = app.query_one(FleetTable)
        fleet = tuple(speaker(i) for i in range(SPEAKERS))
        table.show(snapshot(fleet))
        await pilot.pause()
        counter = LineCounter(table)
        # A new snapshot (a second later) whose rows show the same: nothing to draw.
        table.show(snapshot(tuple(dataclasses.replace(s) for s in fleet), T + 1))
        await pilot.pause()
        assert not counter.lines
