"""The app's side of acting on speakers: which ones `R` resyncs, and a queue that runs actions
on the one Controller a few at a time, so a bulk resync never silences the whole fleet.

No Textual here: the app turns what this module reports (steps, refusals) into rows and toasts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from core.fleet.describe import plural
from core.fleet.model import FleetSnapshot, Speaker, Verdict
from core.fleet.verdict import LINKED_SILENT
from core.hosts import Acting

#: Speakers a bulk resync bounces at the same time. Each is silent for ~3 s and pages on its
#: adapter while it reconnects; two keeps the rest of the fleet playing and an adapter's page
#: scan from being swamped (the issue asks for "a few at a time, never all at once").
AT_ONCE: Final = 2
#: The step shown for a speaker waiting for a free slot in a bulk resync.
QUEUED: Final = "queued"


def needs_resync(snapshot: FleetSnapshot) -> list[Speaker]:
    """Speakers linked without audio while others stream (idle is normal when nothing plays)."""
    if not any(s.verdict == Verdict.STREAMING for s in snapshot.speakers):
        return []
    return [s for s in snapshot.speakers if s.verdict in LINKED_SILENT]


def running_question(
    running: Mapping[str, str], queued: Mapping[str, str], names: Mapping[str, str]
) -> str | None:
    """'a resync of Bar is running: quit anyway?' (None when nothing runs or waits): what q
    asks before it would cancel actions half-way."""
    if not running and not queued:
        return None
    doing = [f"a {action} of {names.get(a, a)}" for a, action in running.items()]
    if len(doing) > 1:
        said = ", ".join(doing[:-1]) + f" and {doing[-1]} are running"
    elif doing:
        said = f"{doing[0]} is running"
    else:
        said = ""
    if queued:
        verb = "is" if len(queued) == 1 else "are"
        more = f"{len(queued)} more" if said else plural(len(queued), "action")
        said = f"{said}; {more} {verb} queued" if said else f"{more} {verb} queued"
    return f"{said[0].upper()}{said[1:]}: quit anyway?"


class ActionQueue:
    """Starts actions on a Controller, remembering what runs and what waits for a slot.

    `on_change(address)` is called when a speaker's action starts, ends or leaves the queue;
    step changes inside a running action come from the Controller's own `on_progress`.
    """

    def __init__(
        self,
        controller: Acting,
        on_change: Callable[[str], None],
        *,
        wanted: Callable[[str, str], bool] | None = None,
        at_once: int = AT_ONCE,
    ) -> None:
        self.controller = controller
        self.on_change = on_change
        #: Asked (action, address) as a queued action's turn comes: False drops it.
        self.wanted = wanted
        self.at_once = at_once
        #: address -> action, for actions running now (started here).
        self.running: dict[str, str] = {}
        #: address -> action, waiting (in order) for fewer than `at_once` to run.
        self.queued: dict[str, str] = {}

    def busy(self, address: str) -> bool:
        return address in self.running or address in self.queued

    def step(self, address: str) -> str:
        """What the speaker's action is doing in words ('' when it has none)."""
        if address in self.queued:
            return QUEUED
        if address in self.running:
            return self.controller.steps.get(address, f"{self.running[address]}…")
        return ""

    def start(self, action: str, address: str) -> bool:
        """Start `action` now; False when the speaker already has one (the Controller says)."""
        if address in self.queued:
            return False
        task = self.controller.start(action, address)
        if task is None:
            return False
        self.running[address] = action
        task.add_done_callback(lambda _task: self._ended(address))
        self.on_change(address)
        return True

    def enqueue(self, action: str, addresses: Iterable[str]) -> list[str]:
        """Queue `action` for each speaker not already busy; returns those queued."""
        added = [a for a in addresses if not self.busy(a) and not self.controller.busy(a)]
        for address in added:
            self.queued[address] = action
            self.on_change(address)
        self._pump()
        return added

    def cancel(self, address: str) -> str:
        """Cancel the speaker's action: 'running' (it will end as cancelled), 'queued'
        (dropped before it started) or '' (nothing to cancel)."""
        if self.queued.pop(address, None) is not None:
            self.on_change(address)
            return "queued"
        if address in self.running and self.controller.cancel(address):
            return "running"
        return ""

    def cancel_all(self, message: str) -> None:
        """Forget the queue and cancel every running action; each ends with `message`."""
        self.queued.clear()
        for address in list(self.running):
            self.controller.cancel(address, message=message)

    def _ended(self, address: str) -> None:
        self.running.pop(address, None)
        self.on_change(address)
        self._pump()

    def _pump(self) -> None:
        """Start queued actions while fewer than `at_once` run (hand-started ones count too)."""
        while self.queued and len(self.running) < self.at_once:
            address, action = next(iter(self.queued.items()))
            del self.queued[address]
            if self.wanted is not None and not self.wanted(action, address):
                self.on_change(address)
            elif not self.start(action, address):
                self.on_change(address)  # taken meanwhile: drop it from the queue
