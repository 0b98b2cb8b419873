"""Sizes: what fits where as the terminal grows or shrinks (pure, so each rule is testable)."""

from __future__ import annotations

from typing import Final

from tui.widgets.fleet_table import MEDIA_WIDTH, MEDIUM, WIDE

#: Below this size the layout cannot show a usable table; we say so instead.
MIN_WIDTH, MIN_HEIGHT = 60, 12
#: Width from which the detail panel sits beside the table.
SIDE_PANEL_WIDTH: Final = 120
#: The side panel's narrowest and widest: 40 leaves a 140-column terminal's table the 99
#: columns of its medium column set; beyond 80 its lines only get emptier.
SIDE_PANEL_MIN, SIDE_PANEL_MAX = 40, 80
#: Columns the table needs beyond its column set's width (its scrollbar gutter).
TABLE_MARGIN: Final = 4
#: Height from which the drift panel shows under the table (below it, probes show as toasts
#: and in the event log: the fleet table comes first).
DRIFT_PANEL_HEIGHT: Final = 36


def side_panel_width(width: int, media: bool) -> int:
    """The side panel's width in a `width`-column terminal: the table keeps the widest column
    set that fits beside a SIDE_PANEL_MIN panel, and the panel gets the rest (up to
    SIDE_PANEL_MAX), so a wide screen gives the details more room, not the table blanks."""
    extra = MEDIA_WIDTH if media else 0
    for table_needs in (WIDE + extra, MEDIUM + extra):
        room = width - table_needs - TABLE_MARGIN
        if room >= SIDE_PANEL_MIN:
            return min(room, SIDE_PANEL_MAX)
    return SIDE_PANEL_MIN


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


def too_small_text(width: int, height: int, fleet: str = "") -> str:
    """The notice shown instead of a layout that cannot fit, with the fleet's line when known
    (the one thing worth seeing even in a tiny pane)."""
    text = (
        f"Terminal is {width}×{height}; btmon-tui needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\n"
        "Enlarge the window, or press q to quit."
    )
    return f"{text}\n\n{fleet}" if fleet else text
