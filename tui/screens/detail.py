"""Full-screen detail of one speaker, kept current by the app on every snapshot."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from core.events import Event
from core.model import DriftSummary, DropoutSummary, Speaker
from tui.widgets.panels import DetailPanel


class DetailScreen(Screen[None]):
    """The selected speaker with its recent events; esc goes back to the fleet."""

    BINDINGS = [Binding("escape,enter", "back", "Back")]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield DetailPanel(id="detail-full")
        yield Footer()

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
