"""The `?` screen: keys, what each verdict means, how to read the columns and panels, and
where the data comes from."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from core.fleet.describe import VERDICT_LABEL
from core.fleet.model import ECHO_MS, TIGHT_MS, VERDICT_MEANING, Verdict
from tui.style import COLOUR, Palette, palette_of

KEYS = (
    ("↑ ↓  PgUp PgDn", "select a speaker"),
    ("enter", "details of the selected speaker (↑ ↓ PgUp PgDn scroll them, esc goes back)"),
    ("r", "resync the selected speaker: disconnect, reconnect, wait for its audio"),
    (
        "R",
        "resync every speaker connected without audio while others stream (lists them "
        "first; two at a time)",
    ),
    ("c", "connect the selected speaker"),
    ("d", "disconnect the selected speaker (asks first)"),
    ("esc", "cancel the selected speaker's running action; closes this help and the keys panel"),
    (
        "p",
        "probe now: a coded sound on every speaker that plays, recorded by the microphone; "
        "the drift panel shows each one's latency and offset",
    ),
    (
        "A",
        "align the fleet: a delay per streaming speaker until the spread is within 5 ms; "
        "on a real host through the audio server's btmon_fleet (play to it), as "
        "`btmon-tui align`",
    ),
    ("l", "show or hide the event log"),
    ("tab", "move to the event log, then ↑ ↓ PgUp PgDn Home End scroll it (tab again: back)"),
    ("a", "show every device (non-speakers; unpaired ones nearby, marked), or only the fleet"),
    ("ctrl+p", "commands by name: resync, probe, align, connect, disconnect, show all, keys"),
    ("?", "this help"),
    (
        "q  ctrl+c  ctrl+q",
        "quit; while a resync, connect or disconnect runs it asks first (quitting would "
        "cancel it half-way), and No is the default",
    ),
)
#: The replay's keys (btmon-tui --replay DB): r c d p act on live speakers only.
REPLAY_KEYS = (
    ("space", "pause or resume the replay"),
    ("← →", "back or forward one minute in the recording"),
    ("+ -", "twice or half the speed"),
)
#: How to read what the screen shows, in the Drops column's own notation.
READING = (
    (
        "Drops",
        "'6 ~4m41s →0:41': 6 dropouts seen, they come every 4 min 41 s, the next one is "
        "expected in 0:41 (in red, or reverse video without colour, under a minute away). "
        "A period shows only once it is statistically clear.",
    ),
    (
        "Last hour",
        "the last 60 minutes, oldest left, one cell per 5 minutes: ▮ = a dropout in that "
        "slot, · = none.",
    ),
    (
        "Sync",
        f"the drift panel's word for a speaker's offset from the fleet's median: tight "
        f"(≤ {TIGHT_MS:.0f} ms, a professional target), loose ({TIGHT_MS:.0f}–{ECHO_MS:.0f} "
        f"ms: not tight, not yet an echo), ECHO (> {ECHO_MS:.0f} ms: heard as two sources), "
        "✗ NOT HEARD (the probe did not hear it: it is silent).",
    ),
    (
        "Media",
        "with --hci or --hci-file: the A2DP media packets each speaker really gets per "
        "second; an active transport with no media for 1 s is 'stalled'.",
    ),
    (
        "Fleet line",
        "'3 of 7 connected speakers streaming' and the speakers connected without audio "
        "('+2 more' when the names do not fit).",
    ),
)


def _section(table: Table, title: str) -> None:
    table.add_row("", "")
    table.add_row(Text(title, style="bold underline"), "")


def help_table(palette: Palette = COLOUR) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style=palette("bold cyan"), no_wrap=True)
    table.add_column()
    table.add_row(Text("Keys", style="bold underline"), "")
    for key, what in KEYS:
        table.add_row(key, what)
    _section(table, "Verdicts")
    for verdict in Verdict:
        table.add_row(
            Text(VERDICT_LABEL[verdict], style=palette.verdict(verdict)), VERDICT_MEANING[verdict]
        )
    _section(table, "Reading it")
    for what, meaning in READING:
        table.add_row(what, meaning)
    _section(table, "Replay keys")
    for key, what in REPLAY_KEYS:
        table.add_row(key, what)
    _section(table, "Source")
    table.add_row(
        "BlueZ",
        "Device1.Connected and the A2DP MediaTransport1.State over D-Bus. 'Connected' alone "
        "does not mean audio: only an active transport does.",
    )
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and verdicts; esc or ? closes it (q still quits, as everywhere); ↑ ↓ scroll it."""

    BINDINGS = [Binding("escape,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(
                Text("btmon-tui help — esc or ? closes it, ↑ ↓ scroll", style="bold"),
                id="help-title",
            )
            yield Static(help_table(palette_of(self.app)))

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
