"""The keys: the fleet view's (its screen offers them, so Textual hides them on the help,
detail and question screens), the app's (help, quit), and which fleet keys are offered when
(live or replay, an action running, the keys panel open). One place for the footer, the key
presses and the Ctrl+P commands."""

from __future__ import annotations

from typing import Final

from textual.binding import Binding, BindingType

#: Seconds ← and → move the replay's clock.
SEEK_S: Final = 60
#: The replay's keys; priority, so ← → reach the replay before the table (which would scroll
#: sideways). Each is offered only while a replay shows the fleet view.
REPLAY_BINDINGS: Final[list[BindingType]] = [
    Binding("space", "replay_pause", "Pause", key_display="space"),
    Binding("left", f"replay_seek({-SEEK_S})", "-1 min", key_display="←", priority=True),
    Binding("right", f"replay_seek({SEEK_S})", "+1 min", key_display="→", priority=True),
    Binding("plus,equals_sign", "replay_speed(2)", "Faster", key_display="+"),
    Binding("minus", "replay_speed(0.5)", "Slower", key_display="-"),
]
#: The replay's actions, to hide them when no replay runs.
REPLAY_ACTIONS: Final = frozenset({"replay_pause", "replay_seek", "replay_speed"})
#: Actions that need live speakers: a replay hides them (its footer shows its own keys).
LIVE_ACTIONS: Final = frozenset({"resync", "resync_all", "connect", "disconnect", "probe", "align"})

#: The fleet view's keys. The footer shows actions and the way to the rest (?, q: the app's)
#: in 80 columns; l and a are in the help screen. A key with two bindings runs the first the
#: screen offers.
FLEET_BINDINGS: Final[list[BindingType]] = [
    Binding("r", "resync", "Resync"),
    Binding("R", "resync_all", "Resync all", key_display="R"),
    Binding("c", "connect", "Connect"),
    Binding("d", "disconnect", "Disconnect"),
    Binding("p", "probe", "Probe"),
    Binding("A", "align", "Align", key_display="A", show=False),
    # In a replay r R c d p say why they do nothing, instead of nothing at all.
    Binding("r,R,c,d,p,A", "live_only", show=False),
    # esc closes the keys panel (ctrl+p → Keys) first, else cancels the selected action.
    Binding("escape", "hide_keys", show=False),
    Binding("escape", "cancel_action", "Cancel", key_display="esc"),
    *REPLAY_BINDINGS,
    Binding("l", "toggle_log", "Log", show=False),
    Binding("a", "toggle_all", "All devices", show=False),
]

#: Keys on every screen: help, and quit (which asks first while an action runs).
APP_BINDINGS: Final[list[BindingType]] = [
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("q", "quit", "Quit"),
    # Ctrl+C quits as q does (asking first while an action runs), not Textual's hint.
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
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
