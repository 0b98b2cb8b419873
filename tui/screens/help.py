"""The `?` screen: keys, what each verdict means, and where the data comes from."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from core.describe import VERDICT_LABEL
from core.model import VERDICT_MEANING, Verdict
from tui.style import VERDICT_STYLE

KEYS = (
    ("↑ ↓  PgUp PgDn", "select a speaker"),
    ("enter", "details of the selected speaker (esc to go back)"),
    ("r", "resync the selected speaker: disconnect, reconnect, wait for its audio"),
    (
        "R",
        "resync every speaker connected without audio while others stream (lists them "
        "first; two at a time)",
    ),
    ("c", "connect the selected speaker"),
    ("d", "disconnect the selected speaker (asks first)"),
    ("esc", "cancel the selected speaker's running action"),
    (
        "p",
        "probe now: a coded sound on every speaker that plays, recorded by the microphone; "
        "the drift panel shows each one's latency and offset (15 ms tight, 40 ms echo)",
    ),
    ("l", "show or hide the event log"),
    ("a", "show every paired device, or only speakers"),
    ("?", "this help"),
    ("q  ctrl+c", "quit"),
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    table.add_row(Text("Keys", style="bold underline"), "")
    for key, what in KEYS:
        table.add_row(key, what)
    table.add_row("", "")
    table.add_row(Text("Verdicts", style="bold underline"), "")
    for verdict in Verdict:
        table.add_row(
            Text(VERDICT_LABEL[verdict], style=VERDICT_STYLE[verdict]), VERDICT_MEANING[verdict]
        )
    table.add_row("", "")
    table.add_row(
        Text("Source", style="bold underline"),
        "BlueZ over D-Bus: Device1.Connected and the A2DP MediaTransport1.State. "
        "'Connected' alone does not mean audio: only an active transport does.",
    )
    table.add_row(
        "",
        "With --hci or --hci-file: the A2DP media packets each speaker really gets (Media "
        "column); an active transport with no media for 1 s is 'stalled'.",
    )
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and verdicts; esc or ? closes it (q still quits, as everywhere)."""

    BINDINGS = [Binding("escape,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("btmon-tui help — esc or ? closes it", style="bold"), id="help-title")
            yield Static(help_table())

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
