"""A yes/no question over the fleet view, asked before an action that silences speakers."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from core.fleet.describe import VERDICT_LABEL, plural
from core.fleet.model import Speaker
from tui.style import COLOUR, Palette


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only on `y` or the yes button; `n`, esc and enter (the focused
    no button) dismiss with False, so a stray key never disconnects anything."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self, question: str, lines: Sequence[Text | str], *, yes: str, no: str, kind: str = ""
    ) -> None:
        super().__init__()
        #: What is asked ('quit', ''): a second q while the quit question is up asks nothing.
        self.kind = kind
        self.question = question
        self.lines = lines
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text(self.question, style="bold"), id="confirm-question")
            for line in self.lines:
                yield Static(line, classes="confirm-line")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def confirm_disconnect(speaker: Speaker) -> ConfirmScreen:
    return ConfirmScreen(
        f"Disconnect {speaker.name} ({speaker.address})?",
        ["It stops playing until it is connected again (c)."],
        yes="Disconnect",
        no="Keep connected",
    )


def confirm_resync_all(
    speakers: Sequence[Speaker], at_once: int, palette: Palette = COLOUR
) -> ConfirmScreen:
    """Names every speaker `R` would resync, with its verdict, before anything happens."""
    lines: list[Text | str] = [
        Text.assemble(
            "  ",
            (VERDICT_LABEL[s.verdict], palette.verdict(s.verdict)),
            f"  {s.name}  {s.address}",
        )
        for s in speakers
    ]
    lines.append(
        f"\n{at_once} at a time; each is silent for a few seconds while it reconnects. "
        "esc on a row cancels its resync."
    )
    return ConfirmScreen(
        f"Resync {plural(len(speakers), 'speaker')} connected without audio while others stream?",
        lines,
        yes="Resync",
        no="Leave them",
    )


def confirm_quit(question: str) -> ConfirmScreen:
    """Asked by q and ctrl+c while an action runs: quitting cancels it mid-way."""
    return ConfirmScreen(
        question,
        [
            "Quitting cancels it where it is: a speaker being resynced may stay disconnected "
            "until someone connects it again.",
        ],
        yes="Quit anyway",
        no="Keep running",
        kind="quit",
    )
