"""Full-screen detail of one speaker, kept current by the app on every snapshot."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from core.fleet.events import Event
from core.fleet.model import DriftSummary, DropoutSummary, Speaker
from tui.widgets.panels import DetailPanel


class DetailPanelFull(DetailPanel):
    """The detail screen's panel: as tall as what it shows, inside a scrolling view."""

    layout_on_update = True


class DetailScreen(Screen[None]):
    """The selected speaker with its recent events; esc goes back to the fleet. It scrolls
    (↑ ↓ PgUp PgDn) when it is taller than the terminal (80×24 and a speaker with history)."""

    BINDINGS = [Binding("escape,enter", "back", "Back")]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-scroll"):
            yield DetailPanelFull(id="detail-full")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-scroll").focus()

    def show(
        self,
        speaker: Speaker | None,
        events: Iterable[Event],
        now: float,
        dropouts: DropoutSummary | None = None,
        drift: DriftSummary | None = None,
    ) -> None:
        self.query_one(DetailPanel).show(speaker, events, now, dropouts, drift)

    def action_back(self) -> None:
        self.dismiss(None)
