"""The fleet's RowTable draws exactly what Textual's DataTable draws (the table it replaced):
same characters, colours and segment boundaries, as the cursor, focus, hover and scroll move."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from rich.console import Console
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.renderables.styled import Styled
from textual.widget import Widget
from textual.widgets import DataTable, Input

from tui.widgets.row_table import Cell, RowTable

COLUMNS = (("verdict", "Verdict"), ("name", "Name"), ("codec", "Codec"), ("drops", "Drops"))
FIXED = {"verdict": 12, "drops": 6}


def cells(index: int) -> dict[str, Cell]:
    return {
        "verdict": Text("● streaming" if index % 3 else "◐ idle", style="bold green"),
        "name": f"Speaker [b]{index:03d}[/b] スピーカー" if index % 4 == 0 else f"Speaker {index}",
        "codec": ("SBC", "AAC", "aptX LL")[index % 3],
        "drops": Text.assemble(("2 ", "red"), ("next in 4m", "yellow")) if index % 5 else "-",
    }


class Tables(App[None]):
    CSS = "#table { width: 1fr; height: 1fr; } Input { height: 3; }"

    def __init__(self, kind: str, rows: int) -> None:
        super().__init__()
        self.kind = kind
        self.rows = rows

    def compose(self) -> ComposeResult:
        table: Widget
        if self.kind == "datatable":
            table = DataTable[Cell](cursor_type="row", id="table")
        else:
            table = RowTable(id="table")
        yield table
        yield Input()

    def on_mount(self) -> None:
        table = self.query_one("#table")
        if isinstance(table, DataTable):
            for key, label in COLUMNS:
                table.add_column(label, key=key, width=FIXED.get(key))
            for index in range(self.rows):
                values = cells(index)
                table.add_row(*(values[key] for key, _ in COLUMNS), key=str(index))
        else:
            assert isinstance(table, RowTable)
            table.set_columns(COLUMNS, FIXED)
            table.set_rows([(str(index), cells(index)) for index in range(self.rows)])
        table.focus()


Step = Callable[[Pilot[None]], Awaitable[None]]


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)


STEPS: list[tuple[str, Step]] = [
    ("start", lambda pilot: pilot.pause()),
    ("down", lambda pilot: press(pilot, "down", "down", "down")),
    ("page down", lambda pilot: press(pilot, "pagedown")),
    ("bottom", lambda pilot: press(pilot, "ctrl+end")),
    ("top", lambda pilot: press(pilot, "ctrl+home")),
    ("scroll right", lambda pilot: press(pilot, "end")),
    ("scroll home", lambda pilot: press(pilot, "home")),
    ("hover", lambda pilot: pilot.hover("#table", offset=(4, 3))),
    ("key after hover", lambda pilot: press(pilot, "down")),
    ("blur", lambda pilot: press(pilot, "tab")),
]


async def screens(kind: str, rows: int, size: tuple[int, int]) -> list[list[list[object]]]:
    """The screen's segments (text and style) after each step."""
    app = Tables(kind, rows)
    out = []
    async with app.run_test(size=size) as pilot:
        for _name, step in STEPS:
            await step(pilot)
            await pilot.pause()
            await pilot.pause()
            strips = app.screen._compositor.render_strips()
            out.append([[(s.text, str(s.style)) for s in strip] for strip in strips])
    return out


@pytest.mark.parametrize("rows, size", [(6, (70, 20)), (60, (70, 20)), (60, (30, 12))])
async def test_rows_look_as_datatable_draws_them(rows: int, size: tuple[int, int]) -> None:
    expected = await screens("datatable", rows, size)
    got = await screens("rowtable", rows, size)
    for (name, _step), want, have in zip(STEPS, expected, got, strict=True):
        assert have == want, name


TEXTS: list[Text] = [
    Text("● streaming", style="bold green"),
    Text.from_markup("Speaker [bold]001[/bold]", end=""),
    Text(""),
    Text("x"),
    Text("スピーカー 🔊 wide", style="cyan"),
    Text.assemble(("ab", "bold"), ("cd", "reverse"), "ef"),
    Text("a long name that does not fit in its column", style="italic"),
]


@pytest.mark.parametrize("text", TEXTS, ids=[t.plain or "empty" for t in TEXTS])
@pytest.mark.parametrize("width", [2, 3, 7, 12, 30])
async def test_cell_shortcut_draws_as_rich(text: Text, width: int) -> None:
    app = Tables("rowtable", 1)
    async with app.run_test(size=(60, 10)):
        table = app.query_one(RowTable)
        console: Console = app.console
        pre = Style.parse("#e0e0e0 on #121212") + Style.from_meta({"row": 1, "column": 2})
        for post in (Style(), Style(color="#ffffff")):
            options = app.console_options.update_dimensions(width, 1).update(no_wrap=True)
            styled = Styled(Padding(text, (0, 1)), pre_style=pre, post_style=post)
            want = list(Segment.simplify(console.render_lines(styled, options)[0]))
            have = list(Segment.simplify(table._cell_segments(text, width, pre, post)))
            assert have == want
