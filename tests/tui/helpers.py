"""Shared bits for the TUI tests: a fixed clock, readers for what the screen shows, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, TypeVar

from textual.app import App
from textual.pilot import Pilot

from core.fleet.model import SourceState
from core.sim.scenario import DEFAULT_FLEET
from tui.app import BtmonApp
from tui.ingest import FleetUpdated
from tui.widgets.fleet_table import FleetTable

#: 2026-11-27 20:00:00 UTC, an evening gig: every time the UI prints derives from it.
FIXED_NOW: Final = 1795809600.0
#: The clock handed to make_app in tests: time stands still.
FIXED_CLOCK: Final[Callable[[], float]] = lambda: FIXED_NOW  # noqa: E731
#: Rows the default demo fleet shows: its paired speakers (an unpaired neighbour's is not ours).
DEMO_ROWS: Final = sum(1 for dev in DEFAULT_FLEET if dev.kind == "speaker" and dev.paired)
#: Seconds to wait for the first full fleet from the fake (a dbus round trip takes ms).
LOAD_TIMEOUT_S: Final = 10.0


def screen_lines(app: App[object]) -> list[str]:
    """The current screen as plain text, one string per terminal row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: App[object]) -> str:
    return "\n".join(screen_lines(app))


def table_cells(app: BtmonApp, column: str) -> dict[str, str]:
    """Speaker name -> plain text of `column` ("verdict", "codec", …) as the table shows it."""
    table = app.query_one(FleetTable)
    out = {}
    for row in range(table.row_count):
        key = table.coordinate_to_cell_key((row, 0)).row_key
        name = str(table.get_cell(key, "name"))
        out[name] = str(table.get_cell(key, column))
    return out


def verdicts(app: BtmonApp) -> dict[str, str]:
    """Speaker name -> verdict word, without the symbol ('streaming', 'connected-idle', …)."""
    return {name: text.split(" ", 1)[-1] for name, text in table_cells(app, "verdict").items()}


async def until(
    pilot: Pilot[object],
    predicate: Callable[[], bool],
    timeout: float = LOAD_TIMEOUT_S,
    what: str = "condition",
) -> float:
    """Let the app run until predicate() holds; return the seconds it took, fail on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; screen:\n{screen_text(pilot.app)}"
            )
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def fleet_loaded(app: BtmonApp, rows: int = DEMO_ROWS) -> bool:
    """True once the table holds the whole fleet and the source is connected."""
    snapshot = app.snapshot
    return (
        snapshot is not None
        and snapshot.source.state == SourceState.CONNECTED
        and app.query_one(FleetTable).row_count == rows
    )


def no_blink(app: App[object]) -> None:
    """Switch off every blinking cursor, so screenshots do not depend on timing."""
    for widget in app.query("*"):
        if hasattr(widget, "cursor_blink"):
            widget.cursor_blink = False


E = TypeVar("E")


def events_of(messages: list[object], kind: type[E]) -> list[E]:
    """The events of type `kind` the app was handed, in order (from a Pilot message hook)."""
    return [
        e for m in messages if isinstance(m, FleetUpdated) for e in m.events if isinstance(e, kind)
    ]
