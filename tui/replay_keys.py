"""The replay's controls (`--replay`): space pauses, ← → move a minute, + - change the speed;
the REPLAY banner at the top says where in the recording the screen is. A mixin of BtmonApp,
which composes it (and adds REPLAY_BINDINGS to its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from rich.text import Text
from textual.binding import Binding

from core.describe import stamp
from core.replay import ReplayMonitor
from tui.style import Palette

if TYPE_CHECKING:
    from tui.ingest import FleetFeed

#: Seconds ← and → move the replay's clock.
SEEK_S: Final = 60
#: The replay's keys; priority, so ← → reach the replay before the table (which would scroll
#: sideways). Each action is available only while a replay shows the fleet view.
REPLAY_BINDINGS: Final = [
    Binding("space", "replay_pause", "Pause", key_display="space"),
    Binding("left", "replay_seek(-60)", "-1 min", key_display="←", priority=True),
    Binding("right", "replay_seek(60)", "+1 min", key_display="→", priority=True),
    Binding("plus,equals_sign", "replay_speed(2)", "Faster", key_display="+"),
    Binding("minus", "replay_speed(0.5)", "Slower", key_display="-"),
]
#: The actions above, to hide them when no replay runs.
REPLAY_ACTIONS: Final = frozenset({"replay_pause", "replay_seek", "replay_speed"})


def replay_banner(monitor: ReplayMonitor, now: float, wall_now: float, palette: Palette) -> Text:
    """'REPLAY 26 Nov 20:03:12 ×20' (or '⏸ PAUSED'): the replay's position, with the day
    unless it is the real today, in reverse video so no one takes it for a live fleet."""
    text = Text(" REPLAY ", style=palette("reverse bold cyan"))
    how = "⏸ PAUSED" if monitor.paused else f"×{monitor.speed:g}"
    text.append(f" {stamp(now, wall_now)} {how}", style="bold")
    return text


class ReplayKeys:
    """space, ← →, + -: drive a ReplayMonitor; nothing happens without one."""

    # Provided by BtmonApp.
    feed: FleetFeed
    notify: Any
    forget_history: Any

    @property
    def replay(self) -> ReplayMonitor | None:
        monitor = self.feed.monitor
        return monitor if isinstance(monitor, ReplayMonitor) else None

    def action_replay_pause(self) -> None:
        if self.replay is not None:
            self.replay.pause(not self.replay.paused)

    def action_replay_seek(self, seconds: float) -> None:
        replay = self.replay
        if replay is None:
            return
        if seconds < 0:
            # Back: the replay plays again from its first record up to there; what the log
            # and the detail view showed after that moment has not happened yet.
            self.forget_history()
        replay.seek(seconds)

    def action_replay_speed(self, factor: float) -> None:
        if self.replay is not None:
            self.replay.set_speed(self.replay.speed * factor)
