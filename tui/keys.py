"""The fleet view's keys, and which of them it offers when (live or replay, an action running,
the keys panel open): one place for the footer, the key presses and the Ctrl+P commands."""

from __future__ import annotations

from typing import Final

from textual.binding import Binding, BindingType

from tui.replay_keys import REPLAY_ACTIONS, REPLAY_BINDINGS

#: Actions that act on the fleet view's speakers (hidden on the help and detail screens).
FLEET_ACTIONS: Final = frozenset(
    {
        "toggle_log",
        "toggle_all",
        "resync",
        "resync_all",
        "connect",
        "disconnect",
        "cancel_action",
        "probe",
        "live_only",
        *REPLAY_ACTIONS,
    }
)
#: Actions that need live speakers: a replay hides them (its footer shows its own keys).
LIVE_ACTIONS: Final = frozenset({"resync", "resync_all", "connect", "disconnect", "probe"})

#: The footer shows actions and the way to the rest (?, q) in 80 columns; l and a are in the
#: help screen. A key with two bindings runs the first its screen offers.
APP_BINDINGS: Final[list[BindingType]] = [
    Binding("r", "resync", "Resync"),
    Binding("R", "resync_all", "Resync all", key_display="R"),
    Binding("c", "connect", "Connect"),
    Binding("d", "disconnect", "Disconnect"),
    Binding("p", "probe", "Probe"),
    # In a replay r R c d p say why they do nothing, instead of nothing at all.
    Binding("r,R,c,d,p", "live_only", show=False),
    # esc closes the keys panel (ctrl+p → Keys) first, else cancels the selected action.
    Binding("escape", "hide_keys", show=False),
    Binding("escape", "cancel_action", "Cancel", key_display="esc"),
    *REPLAY_BINDINGS,
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("q", "quit", "Quit"),
    # Ctrl+C quits as q does (asking first while an action runs), not Textual's hint.
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    Binding("l", "toggle_log", "Log", show=False),
    Binding("a", "toggle_all", "All devices", show=False),
]


def offered(action: str, *, replay: bool, acting: bool, keys_panel: bool) -> bool:
    """Whether the fleet view offers `action`: a replay has no actions but its own controls;
    esc cancels only while an action runs (`acting`) and closes the keys panel when open."""
    if replay and (action in LIVE_ACTIONS or action == "cancel_action"):
        return False  # a replay shows the past: nothing to act on
    if action == "cancel_action":
        return acting
    if action in REPLAY_ACTIONS or action == "live_only":
        return replay
    if action == "hide_keys":
        return keys_panel
    return True
