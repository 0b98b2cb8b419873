"""Events and verdicts in an operator's words, shared by the TUI's log and headless output."""

from __future__ import annotations

import time
from typing import Any

from core.model import Verdict

#: Verdict -> short label for the table, with a symbol so it reads without colour.
VERDICT_LABEL: dict[Verdict, str] = {
    Verdict.STREAMING: "● streaming",
    Verdict.STALLED: "▲ stalled",
    Verdict.CONNECTED_IDLE: "◐ connected-idle",
    Verdict.PENDING: "… pending",
    Verdict.NO_A2DP: "◌ no-a2dp",
    Verdict.DISCONNECTED: "○ disconnected",
    Verdict.UNKNOWN: "? unknown",
}

REASON_WORDS: dict[str, str] = {
    "timeout": "link timed out (out of range or speaker reset)",
    "remote": "the speaker hung up",
    "local": "disconnected from this host",
    "auth": "authentication failed",
    "suspend": "host suspended",
    "unknown": "reason unknown",
}


def clock_time(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def age(seconds: float) -> str:
    """'4s', '3m05s', '2h10m' — how long ago, compact for a table cell."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def describe_event(event: dict[str, Any], names: dict[str, str] | None = None) -> str | None:
    """One line for the event log, or None for events not worth a line (speaker rows)."""
    names = names or {}
    who = names.get(event.get("address", ""), event.get("address", ""))
    kind = event.get("type")
    if kind == "device":
        if event.get("connected"):
            return f"{who}: connected"
        reason = event.get("reason")
        return f"{who}: disconnected — {REASON_WORDS.get(reason or '', 'reason not reported')}"
    if kind == "transport":
        state = event.get("state")
        codec = event.get("codec")
        if state == "absent":
            return f"{who}: A2DP transport gone"
        if state == "active":
            return f"{who}: streaming ({codec})" if codec else f"{who}: streaming"
        if state == "idle":
            return f"{who}: A2DP transport idle — connected but no audio"
        return f"{who}: A2DP transport {state}"
    if kind == "source":
        return str(event.get("detail"))
    if kind == "dropout":
        return f"{who}: DROPOUT ({event.get('kind')})"
    if kind == "action":
        return f"{who}: {event.get('action')} {event.get('result')} {event.get('detail') or ''}"
    return None
