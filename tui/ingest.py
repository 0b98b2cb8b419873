"""The one place core meets Textual: runs the Monitor on the app's loop and hands the app
immutable snapshots plus the events since the last pull."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message

from core.fleet.events import Event
from core.fleet.model import FleetSnapshot, SourceStatus
from core.monitor import EventLog, Monitor

#: Events kept for the log and detail views (about an hour of a busy fleet).
EVENT_HISTORY = 5000


@dataclass
class FleetUpdated(Message):
    """Posted by the app's render timer: a new snapshot and the events since the last one."""

    snapshot: FleetSnapshot
    events: list[Event]


@dataclass
class SourceChanged(Message):
    """The BlueZ source changed state (connected, waiting for BlueZ, error)."""

    status: SourceStatus


class FleetFeed:
    """Owns the Monitor; buffers its events until the render timer pulls them."""

    def __init__(
        self,
        bus: str,
        *,
        bus_label: str = "",
        include_all: bool = False,
        clock: Callable[[], float] = time.time,
        log: EventLog | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        """Feed from BlueZ on `bus`, or from a ready-made `monitor` (a replay)."""
        self._pending: list[Event] = []
        self.history: deque[Event] = deque(maxlen=EVENT_HISTORY)
        if monitor is None:
            monitor = Monitor(
                bus, bus_label=bus_label, include_all=include_all, clock=clock, log=log
            )
        monitor.on_events = self._on_events
        self.monitor = monitor
        self._last_version = -1
        self._last_second = -1

    def _on_events(self, events: list[Event]) -> None:
        self._pending.extend(events)

    async def run(self) -> None:
        await self.monitor.run()

    def pull(self) -> tuple[FleetSnapshot, list[Event]] | None:
        """The new snapshot and events, or None when nothing changed since the last pull."""
        state = self.monitor.state
        second = int(self.monitor.clock())
        # Countdowns to expected dropouts move every second even when nothing else does.
        ticking = second != self._last_second and self.monitor.has_periods()
        if state.version == self._last_version and not self._pending and not ticking:
            return None
        self._last_version = state.version
        self._last_second = second
        events, self._pending = self._pending, []
        self.history.extend(events)
        return self.monitor.snapshot(), events

    def forget(self) -> None:
        """Drop the events kept and not yet pulled (a replay going back in time)."""
        self._pending.clear()
        self.history.clear()

    def warnings(self) -> list[str]:
        return list(self.monitor.warnings)
