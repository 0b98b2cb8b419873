"""Colours per verdict, in the 16 ANSI colours so they survive any terminal and tmux."""

from __future__ import annotations

from core.model import SourceState, Verdict

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
