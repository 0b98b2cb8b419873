"""RowTable: a table on Textual's Line API that repaints only the cells that changed.

It looks and behaves as a `DataTable` with a row cursor (same component classes, colours, keys,
mouse), but a change to one cell refreshes only that cell's region, and each row's rendered
line is cached until that row, the cursor or hover on it, the widths or the styles change.
DataTable bumps one update counter that every cached line depends on, so any change repainted
every visible row (bench/RESULTS.md §2, §3).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from rich.cells import cell_len
from rich.console import RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.render import measure
from textual.renderables.styled import Styled
from textual.scroll_view import ScrollView
from textual.strip import Strip

#: What a cell holds: plain text (read as console markup, as DataTable does) or styled text.
Cell = Text | str
#: Blank cells on each side of every column (DataTable's default `cell_padding`).
CELL_PADDING = 1
#: The header is one line and stays put while the rows scroll under it.
HEADER_HEIGHT = 1
#: Row index of the header in styles and mouse metadata (as DataTable marks it).
HEADER_ROW = -1


class CellKey(NamedTuple):
    """Where a cell lives: its row's key and its column's key."""

    row_key: str
    column_key: str


@dataclass(slots=True)
class Column:
    """A column: its key, header label and width in cells without padding."""

    key: str
    label: Text
    #: A fixed width, or None: as wide as the widest of label and cells (grown as they come).
    fixed: int | None
    content_width: int

    @property
    def render_width(self) -> int:
        return (self.content_width if self.fixed is None else self.fixed) + 2 * CELL_PADDING


@dataclass(slots=True, frozen=True)
class _Styles:
    """The styles every line is drawn with; they change with focus, theme and NO_COLOR."""

    base: Style
    header: Style
    cursor: Style
    hover: Style
    header_hover: Style


#: Text.join's separator: joining one line makes its style a span, as rich does to draw it.
_NEWLINE = Text("\n")


def _plain_line(text: Text) -> bool:
    """Whether a Text draws as one cut line with no layout of its own (the shortcut's case)."""
    plain = text.plain
    return (
        "\n" not in plain
        and "\t" not in plain
        and text.no_wrap is not False
        and text.justify in (None, "default")
        and text.overflow in (None, "fold", "crop")
    )


def _formatted(value: Cell) -> Text:
    """A cell as drawn: strings are console markup cut at their first line, as DataTable does."""
    if isinstance(value, Text):
        return value
    newline = value.find("\n")
    if newline not in (-1, len(value) - 1):
        value = value[:newline]
    text = Text.from_markup(value, end="")
    text.no_wrap = True
    return text


class RowTable(ScrollView, can_focus=True):
    """Rows of cells with a row cursor, drawn line by line from a per-row cache."""

    ALLOW_SELECT = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "cursor_right", "Cursor right", show=False),
        Binding("left", "cursor_left", "Cursor left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home", "scroll_top", "Top", show=False),
        Binding("ctrl+end", "scroll_bottom", "Bottom", show=False),
        Binding("home", "scroll_home", "Home", show=False),
        Binding("end", "scroll_end", "End", show=False),
    ]

    #: DataTable's component classes, so that themes and app CSS style both alike.
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--cursor",
        "datatable--hover",
        "datatable--fixed",
        "datatable--fixed-cursor",
        "datatable--header",
        "datatable--header-cursor",
        "datatable--header-hover",
        "datatable--odd-row",
        "datatable--even-row",
    }

    # The look of Textual's DataTable (textual 8.2.8), so that the fleet looks as it did.
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &.datatable--fixed-cursor {
            background: $block-cursor-blurred-background;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header {
                background-tint: $foreground 5%;
            }
            & > .datatable--fixed-cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
            }
        }
        &:dark {
            & > .datatable--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--fixed {
            background: $secondary-muted;
            color: $foreground;
        }
        & > .datatable--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .datatable--fixed-cursor {
            background: $block-cursor-blurred-background;
            color: $foreground;
        }
        & > .datatable--header-cursor {
            background: $accent-darken-1;
            color: $foreground;
        }
        & > .datatable--header-hover {
            background: $accent 30%;
        }
        & > .datatable--hover {
            background: $block-hover-background;
        }
    }
    """

    @dataclass
    class RowHighlighted(Message):
        """The cursor moved to another row."""

        cursor_row: int
        row_key: str

    @dataclass
    class RowSelected(Message):
        """Enter, or a click on the cursor's cell, chose the row under the cursor."""

        cursor_row: int
        row_key: str

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._columns: list[Column] = []
        self._column_index: dict[str, int] = {}
        #: Row keys in display order, and each key's index.
        self._keys: list[str] = []
        self._row_index: dict[str, int] = {}
        self._data: dict[str, dict[str, Cell]] = {}
        self._texts: dict[str, list[Text]] = {}
        #: Each cell's width in cells (auto columns fit the widest).
        self._widths: dict[str, list[int]] = {}
        #: Row index (HEADER_ROW for the header) -> (what it was drawn from, its line).
        self._lines: dict[int, tuple[tuple[object, ...], Strip]] = {}
        #: (row, column) -> (the cell drawn, (width, cursor, hover), its segments): a row
        #: redrawn for one new cell reuses the others.
        self._cell_cache: dict[
            tuple[int, int], tuple[RenderableType, tuple[int, bool, bool], list[Segment]]
        ] = {}
        self._styles: _Styles | None = None
        self._cursor_row = 0
        #: Clicking the cell under the cursor selects; DataTable keeps the column for that.
        self._cursor_column = 0
        self._hover_row = 0
        #: The hover highlight shows after mouse moves and hides again on a key press.
        self._show_hover = False
        #: The virtual size changed and the layout has not caught up yet.
        self._settling = False

    # -- reading ---------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def cursor_row(self) -> int:
        return self._cursor_row

    @property
    def columns(self) -> list[Column]:
        """The columns in display order."""
        return list(self._columns)

    def row_key_at(self, row: int) -> str | None:
        return self._keys[row] if 0 <= row < len(self._keys) else None

    def coordinate_to_cell_key(self, coordinate: tuple[int, int]) -> CellKey:
        row, column = coordinate
        if not (0 <= row < len(self._keys) and 0 <= column < len(self._columns)):
            raise KeyError(f"No cell at {coordinate!r}")
        return CellKey(self._keys[row], self._columns[column].key)

    def get_cell(self, row_key: str, column_key: str) -> Cell:
        return self._data[row_key][column_key]

    # -- writing ---------------------------------------------------------------------------
    def set_columns(self, columns: Sequence[tuple[str, str]], fixed: Mapping[str, int]) -> None:
        """Replace the columns (key, label) and drop every row; `fixed`: key -> width."""
        self._columns = []
        for key, label in columns:
            text = Text.from_markup(label)
            width = measure(self.app.console, text, 1)
            self._columns.append(Column(key, text, fixed.get(key), width))
        self._column_index = {column.key: i for i, column in enumerate(self._columns)}
        self.set_rows([])

    def set_rows(self, rows: Sequence[tuple[str, Mapping[str, Cell]]]) -> None:
        """Replace every row: (key, column key -> cell). Auto columns grow to fit; the cursor
        and the scroll position go back to the top (DataTable's clear() and add_row())."""
        self._keys = [key for key, _ in rows]
        self._row_index = {key: i for i, key in enumerate(self._keys)}
        self._data = {key: dict(cells) for key, cells in rows}
        self._texts = {key: self._format(cells) for key, cells in rows}
        self._widths = {
            key: [self._width_of(t) for t in texts] for key, texts in self._texts.items()
        }
        for index, column in enumerate(self._columns):
            if column.fixed is None:
                widths = [widths[index] for widths in self._widths.values()]
                column.content_width = max([column.content_width, *widths])
        self._forget_lines()
        self._cursor_row = self._cursor_column = self._hover_row = 0
        self.scroll_x = self.scroll_y = 0
        self.scroll_target_x = self.scroll_target_y = 0
        self._resize_virtual()
        self.refresh()
        if self._keys and self._columns:
            self.post_message(self.RowHighlighted(0, self._keys[0]))

    def update_row(self, key: str, cells: Mapping[str, Cell], *, fit: Collection[str] = ()) -> None:
        """Set some cells of a row, repainting only those cells. Columns in `fit` are
        re-measured (grow or shrink to their widest cell); others keep their width and cut."""
        row = self._row_index[key]
        data = self._data[key]
        texts = self._texts[key]
        widths = self._widths[key]
        changed: list[int] = []
        for column_key, value in cells.items():
            index = self._column_index.get(column_key)
            if index is None or data.get(column_key) == value:
                continue
            data[column_key] = value
            texts[index] = _formatted(value)
            widths[index] = self._width_of(texts[index])
            changed.append(index)
        if not changed:
            return
        self._lines.pop(row, None)
        resized = False
        for index in changed:
            column = self._columns[index]
            if column.key in fit and column.fixed is None:
                resized |= self._refit(column, index)
        if resized:
            self._forget_lines()
            self._resize_virtual()
            self.refresh()
            return
        x = [0]
        for column in self._columns:
            x.append(x[-1] + column.render_width)
        start, end = min(x[i] for i in changed), max(x[i + 1] for i in changed)
        self._refresh_virtual(Region(start, HEADER_HEIGHT + row, end - start, 1))

    # -- the cursor ------------------------------------------------------------------------
    def move_cursor(
        self,
        *,
        row: int | None = None,
        column: int | None = None,
        animate: bool = False,
        scroll: bool = True,
    ) -> None:
        """Move the cursor (clamped to the table) and, with `scroll`, into view."""
        if scroll:
            self._scroll_cursor_into_view(animate=animate)
        if column is not None:
            self._cursor_column = max(0, min(column, len(self._columns) - 1))
        if row is not None:
            self._set_cursor(row)

    def _set_cursor(self, row: int) -> None:
        """Put the cursor on `row` (clamped); a new row is repainted, announced and shown."""
        row = max(0, min(row, len(self._keys) - 1))
        old, self._cursor_row = self._cursor_row, row
        if row != old:
            self._refresh_row(old)
            self._refresh_row(row)
            if row < len(self._keys):
                self.post_message(self.RowHighlighted(row, self._keys[row]))
            self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        if self._settling:
            # The new size is known after the next layout; scrolling now would clamp wrongly.
            self.call_after_refresh(self._scroll_cursor_into_view, animate)
            return
        width = max(self.size.width, self.virtual_size.width)
        region = Region(int(self.scroll_x), HEADER_HEIGHT + self._cursor_row, width, 1)
        spacing = Spacing(HEADER_HEIGHT, 0, 0, 0)
        self.scroll_to_region(region, animate=animate, spacing=spacing, force=True)

    def _set_hover(self, show: bool, row: int | None = None) -> None:
        old_row, old_show = self._hover_row, self._show_hover
        self._show_hover = show
        if row is not None:
            self._hover_row = row
        if (old_row, old_show) != (self._hover_row, self._show_hover):
            self._refresh_row(old_row)
            self._refresh_row(self._hover_row)

    # -- keys and mouse --------------------------------------------------------------------
    def action_cursor_up(self) -> None:
        self._set_hover(False)
        self._set_cursor(self._cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._set_hover(False)
        self._set_cursor(self._cursor_row + 1)

    def action_cursor_left(self) -> None:
        self._set_hover(False)
        self.action_scroll_left()

    def action_cursor_right(self) -> None:
        self._set_hover(False)
        self.action_scroll_right()

    def action_page_down(self) -> None:
        self._set_hover(False)
        height = self.scrollable_content_region.height - HEADER_HEIGHT
        self.scroll_relative(y=height, animate=False, force=True)
        self._set_cursor(self._cursor_row + max(0, height))

    def action_page_up(self) -> None:
        self._set_hover(False)
        height = self.scrollable_content_region.height - HEADER_HEIGHT
        self.scroll_relative(y=-height, animate=False)
        self._set_cursor(self._cursor_row - max(0, height))

    def action_page_left(self) -> None:
        self._set_hover(False)
        self.scroll_page_left()

    def action_page_right(self) -> None:
        self._set_hover(False)
        self.scroll_page_right()

    def action_scroll_top(self) -> None:
        self._set_hover(False)
        self._set_cursor(0)

    def action_scroll_bottom(self) -> None:
        self._set_hover(False)
        self._set_cursor(len(self._keys) - 1)

    def action_scroll_home(self) -> None:
        self._set_hover(False)
        self.scroll_x = 0

    def action_scroll_end(self) -> None:
        self._set_hover(False)
        self.scroll_x = self.max_scroll_x

    def action_select_cursor(self) -> None:
        self._set_hover(False)
        self._post_selected()

    def _post_selected(self) -> None:
        if self._keys:
            self.post_message(self.RowSelected(self._cursor_row, self._keys[self._cursor_row]))

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        meta = event.style.meta
        if "row" in meta:
            self._set_hover(True, int(meta["row"]))
        else:
            self._set_hover(bool(meta))

    def _on_leave(self, _event: events.Leave) -> None:
        self._set_hover(False)

    async def _on_click(self, event: events.Click) -> None:
        meta = event.style.meta
        self._set_hover(True)
        if "row" not in meta or "column" not in meta or meta["row"] == HEADER_ROW:
            return
        row, column = int(meta["row"]), int(meta["column"])
        again = (row, column) == (self._cursor_row, self._cursor_column)
        self._cursor_column = max(0, min(column, len(self._columns) - 1))
        self._set_cursor(row)
        if again:
            self._post_selected()
        self._scroll_cursor_into_view(animate=True)
        event.stop()

    # -- drawing ---------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        # CSS was applied again (focus, hover, theme): render_lines compares the styles.
        super().notify_style_update()
        self.refresh()

    def _on_resize(self, _event: events.Resize) -> None:
        self._lines.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        styles = _Styles(
            self.rich_style,
            self.get_component_rich_style("datatable--header"),
            self.get_component_rich_style("datatable--cursor"),
            self.get_component_rich_style("datatable--hover"),
            self.get_component_rich_style("datatable--header-hover"),
        )
        if styles != self._styles:
            self._styles = styles
            self._forget_lines()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        styles = self._styles
        assert styles is not None, "render_lines sets the styles"
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        row = HEADER_ROW if y < HEADER_HEIGHT else y - HEADER_HEIGHT + scroll_y
        if row >= len(self._keys):
            return Strip.blank(width, styles.base)
        cursor = row == self._cursor_row
        hover = self._show_hover and row == self._hover_row
        key = (cursor, hover, width, scroll_x)
        cached = self._lines.get(row)
        if cached is not None and cached[0] == key:
            return cached[1]
        segments = self._row_segments(row, styles, cursor=cursor, hover=hover, width=width)
        table_width = sum(column.render_width for column in self._columns)
        if scroll_x == 0 and table_width <= width:
            # Not scrolled and no wider than the widget: the line is exactly `width` cells.
            strip = Strip(Segment.simplify(segments), width)
        else:
            strip = Strip(segments).crop(scroll_x, scroll_x + width)
            strip = strip.adjust_cell_length(width, styles.base).simplify()
        self._lines[row] = (key, strip)
        return strip

    def _row_segments(
        self, row: int, styles: _Styles, *, cursor: bool, hover: bool, width: int
    ) -> list[Segment]:
        """One row's whole line (every column, then the rest of the widget's width)."""
        header = row == HEADER_ROW
        row_style = styles.header if header else styles.base
        highlight = Style()
        if hover:
            highlight += styles.hover
            if header:
                highlight += styles.header_hover
        if cursor:
            highlight += styles.cursor
        # The cursor's foreground wins over a cell's own; its background does not.
        post = Style.from_color(color=highlight.color)
        texts: Sequence[RenderableType] = (
            [column.label for column in self._columns] if header else self._texts[self._keys[row]]
        )
        segments: list[Segment] = []
        cells = self._cell_cache
        for index, (column, text) in enumerate(zip(self._columns, texts, strict=True)):
            cell_width = column.render_width
            look = (cell_width, cursor, hover)
            cached = cells.get((row, index))
            if cached is not None and cached[0] is text and cached[1] == look:
                segments += cached[2]
                continue
            pre = row_style + Style.from_meta({"row": row, "column": index}) + highlight
            drawn = self._cell_segments(text, cell_width, pre, post)
            cells[(row, index)] = (text, look, drawn)
            segments += drawn
        rest = max(0, width - sum(column.render_width for column in self._columns))
        meta = Style.from_meta({"row": row, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * rest, row_style + highlight + meta))
        return segments

    def _cell_segments(
        self, cell: RenderableType, width: int, pre: Style, post: Style
    ) -> list[Segment]:
        """One cell's line, `width` cells wide with its padding, drawn as DataTable draws it
        (rich's Styled(Padding(cell)), no wrap, cut at the width); a one-line Text takes a
        shortcut with the same result at a tenth of the cost (tests/tui/test_fleet_table_*)."""
        console = self.app.console
        inner = width - 2 * CELL_PADDING
        if not isinstance(cell, Text) or not _plain_line(cell) or inner < 1:
            options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
            styled = Styled(Padding(cell, (0, CELL_PADDING)), pre_style=pre, post_style=post)
            return console.render_lines(styled, options)[0]
        # As Text renders itself: its own style becomes a span of a joined line.
        runs = list(_NEWLINE.join([cell]).render(console))
        if cell_len(cell.plain) != inner:
            runs = Segment.adjust_line_length(runs, inner)
        pad = pre + post
        return [
            Segment(" " * CELL_PADDING, pad),
            *(Segment(text, pre + style + post) for text, style, _ in runs),
            Segment(" " * CELL_PADDING, pad),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def _format(self, cells: Mapping[str, Cell]) -> list[Text]:
        return [_formatted(cells.get(column.key, "")) for column in self._columns]

    def _width_of(self, text: Text) -> int:
        return measure(self.app.console, text, 1)

    def _refit(self, column: Column, index: int) -> bool:
        """Fit an auto column to its label and cells; True if its width changed."""
        widths = [widths[index] for widths in self._widths.values()]
        width = max([self._width_of(column.label), *widths])
        if width == column.content_width:
            return False
        column.content_width = width
        return True

    def _forget_lines(self) -> None:
        """Drop every cached line and cell (rows, widths or styles changed)."""
        self._lines.clear()
        self._cell_cache.clear()

    def _resize_virtual(self) -> None:
        width = sum(column.render_width for column in self._columns)
        size = Size(width, HEADER_HEIGHT + len(self._keys))
        if size != self.virtual_size:
            self.virtual_size = size
            self._settling = True
            self.call_after_refresh(self._settled)

    def _settled(self) -> None:
        self._settling = False

    def _refresh_row(self, row: int) -> None:
        self._lines.pop(row, None)
        width = max(self.size.width, self.virtual_size.width)
        if row == HEADER_ROW:
            self.refresh(Region(0, 0, width, HEADER_HEIGHT))
        else:
            self._refresh_virtual(Region(0, HEADER_HEIGHT + row, width, 1))

    def _refresh_virtual(self, region: Region) -> None:
        """Repaint a region given in table coordinates (rows scroll, the header does not)."""
        if not self.window_region.overlaps(region):
            return
        self.refresh(region.translate(-self.scroll_offset))
