"""Ctrl+P: the app's own commands by name (resync Bar, probe now, show all devices, …) in
Textual's command palette, next to its system commands (theme, keys, quit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from tui.screens.fleet import FleetScreen


@dataclass(frozen=True, slots=True)
class Command:
    """One palette entry: `action` is what its key runs ('resync', 'replay_seek(-60)')."""

    action: str
    title: str
    help: str


#: The fleet view's commands; {name} is the selected speaker. Each says its key, so the
#: palette also teaches the keys.
FLEET_COMMANDS: Final = (
    Command("resync", "Resync {name}", "disconnect, reconnect, wait for its audio  (r)"),
    Command(
        "resync_all",
        "Resync every silent speaker",
        "each speaker connected without audio while others stream, two at a time  (R)",
    ),
    Command("connect", "Connect {name}", "connect the selected speaker  (c)"),
    Command("disconnect", "Disconnect {name}", "asks first  (d)"),
    Command("cancel_action", "Cancel {name}'s action", "stop its running action  (esc)"),
    Command("probe", "Probe now", "latency and drift of every speaker that plays  (p)"),
    Command("align", "Align the fleet", "a delay per speaker until the spread is <= 5 ms  (A)"),
    Command("toggle_log", "Show or hide the event log", "the log under the table  (l)"),
)
#: Replaying a recording (--replay): its own controls instead of the actions.
REPLAY_COMMANDS: Final = (
    Command("replay_pause", "Pause or resume the replay", "the recording's clock stops  (space)"),
    Command("replay_seek(-60)", "Replay: back 1 minute", "(←)"),
    Command("replay_seek(60)", "Replay: forward 1 minute", "(→)"),
    Command("replay_speed(2)", "Replay faster", "twice the speed  (+)"),
    Command("replay_speed(0.5)", "Replay slower", "half the speed  (-)"),
)
#: Offered on every screen: the way to the rest.
HELP_COMMAND: Final = Command(
    "help", "Help", "keys, verdicts, and how to read the Drops, Last hour and Sync columns  (?)"
)


def show_all_command(include_all: bool) -> Command:
    """`a` as a command named for what it will do now."""
    if include_all:
        return Command("toggle_all", "Show speakers only", "hide phones and other devices  (a)")
    return Command("toggle_all", "Show all devices", "every paired device, not only speakers  (a)")


def fleet_commands(
    selected: str | None, include_all: bool, available: Callable[[str], bool]
) -> list[Command]:
    """The commands that make sense now: `available(action)` is the app's say (a replay has no
    actions; esc only while one runs), `selected` the selected speaker's name."""
    commands = [*FLEET_COMMANDS, *REPLAY_COMMANDS, show_all_command(include_all), HELP_COMMAND]
    out = []
    for command in commands:
        if not available(command.action.split("(", 1)[0]):
            continue
        if "{name}" in command.title:
            if selected is None:
                continue
            command = Command(command.action, command.title.format(name=selected), command.help)
        out.append(command)
    return out


class FleetCommands(Provider):
    """The fleet view's commands, found by name (fuzzy), run as their keys would run them."""

    def _commands(self) -> list[Command]:
        fleet = self.screen
        if not isinstance(fleet, FleetScreen):
            return [HELP_COMMAND]  # over the detail or help screen: the fleet is not in view
        speaker = fleet.selected_speaker()
        return fleet_commands(
            speaker.name if speaker is not None else None, fleet.include_all, fleet.offers
        )

    def _run(self, command: Command) -> Callable[[], object]:
        """Runs `command` where its key is bound: help on the app, the rest on the fleet."""
        where: DOMNode = self.app if command == HELP_COMMAND else self.screen
        return partial(self.app.run_action, command.action, where)

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, self._run(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(command.title), self._run(command), help=command.help
                )
