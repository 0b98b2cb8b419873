"""Colours per verdict, in the 16 ANSI colours so they survive any terminal and tmux, and their
colour-free twins for NO_COLOR, where an alarm must stand out by weight or reverse video."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from core.fleet.model import SourceState, Verdict

VERDICT_STYLE: dict[Verdict, str] = {
    Verdict.STREAMING: "bold green",
    Verdict.STALLED: "bold red",
    Verdict.CONNECTED_IDLE: "bold yellow",
    Verdict.PENDING: "cyan",
    Verdict.NO_A2DP: "bold magenta",
    Verdict.DISCONNECTED: "bright_black",
    Verdict.UNKNOWN: "bright_black",
}

SOURCE_STYLE: dict[SourceState, str] = {
    SourceState.CONNECTED: "green",
    SourceState.CONNECTING: "cyan",
    SourceState.WAITING: "bold yellow",
    SourceState.ERROR: "bold red",
}

#: Colours that mark an alarm or a warning. Textual's NO_COLOR filter turns every colour into
#: its grey: red and magenta come out at ~1.3:1 against the background (measured on the
#: default theme), so without colour these must become reverse video or bold instead.
ALARM_COLOURS = frozenset({"red", "bright_red", "magenta", "bright_magenta", "yellow"})
#: Colours that only mark "fine" or "identity"; without colour they are simply dropped.
PLAIN_COLOURS = frozenset(
    {"green", "bright_green", "cyan", "bright_cyan", "blue", "bright_blue", "white"}
)


@lru_cache(maxsize=256)
def colour_free(style: str) -> str:
    """`style` for NO_COLOR: a bold alarm colour ('bold red', 'bold magenta') becomes
    'bold reverse', a plain one ('red', 'yellow') 'bold'; other colours are dropped, greys
    ('bright_black', meant to be quiet) stay for the monochrome filter to grey."""
    words = style.split()
    alarm = any(w in ALARM_COLOURS for w in words)
    kept = [w for w in words if w not in ALARM_COLOURS and w not in PLAIN_COLOURS]
    if alarm:
        kept += ["bold", "reverse"] if "bold" in words else ["bold"]
    return " ".join(dict.fromkeys(kept))


class Palette:
    """Turns the UI's styles into what the terminal should draw: as written, or colour-free
    when NO_COLOR is set (https://no-color.org). Widgets get theirs with `palette_of(app)`."""

    def __init__(self, no_color: bool) -> None:
        self.no_color = no_color

    def __call__(self, style: str) -> str:
        return colour_free(style) if self.no_color else style

    def verdict(self, verdict: Verdict) -> str:
        return self(VERDICT_STYLE[verdict])

    def source(self, state: SourceState) -> str:
        return self(SOURCE_STYLE[state])


#: The two palettes: colours, and none (NO_COLOR).
COLOUR, NO_COLOUR = Palette(False), Palette(True)


def palette_of(app: Any) -> Palette:
    """The palette for a running app: Textual notes NO_COLOR as `App.no_color` at start."""
    return NO_COLOUR if getattr(app, "no_color", False) else COLOUR
