"""ReplayMonitor: plays a recorded session from the event log through the same UI (`--replay`).

It is a Monitor whose source is the log instead of BlueZ: recorded speakers are put in place
as they were (not re-judged), recorded dropouts feed the same detector, and the clock is the
recording's, running `speed` times faster, so ages and countdowns read as they did then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Final

from core.events import Event, RawEvent
from core.model import SourceState, SourceStatus, Speaker
from core.monitor import Monitor

#: The longest real pause between two replayed events (a quiet hour need not take an hour).
MAX_PAUSE_S: Final = 2.0


class ReplayMonitor(Monitor):
    """A Monitor fed from recorded §4.2 records in time order."""

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        label: str,
        speed: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.records = sorted(records, key=lambda r: float(r["t"]))
        self.speed = speed
        self.label = label
        self.now = float(self.records[0]["t"]) if self.records else 0.0
        super().__init__("replay", bus_label=label, clock=lambda: self.now, **kwargs)
        self.finished = asyncio.Event()

    async def run(self) -> None:
        state = self.mirror.state
        total = len(self.records)
        self._status(SourceState.CONNECTED, f"replaying {self.label} at {self.speed:g}×")
        loop = asyncio.get_running_loop()
        for index, record in enumerate(self.records):
            t = float(record["t"])
            if t > self.now:
                if state.speakers:  # before the first fleet is known there is nothing to watch
                    await asyncio.sleep(min((t - self.now) / self.speed, MAX_PAUSE_S))
                self.now = t
            self._apply(state, record)
            if index % 200 == 0:
                await asyncio.sleep(0)  # let the UI render during bursts
        self._status(
            SourceState.CONNECTED,
            f"replay of {self.label} finished: {total} events; q to quit",
        )
        self.finished.set()
        await loop.create_future()  # stay up so the operator can read the screen

    def _apply(self, state: Any, record: Mapping[str, Any]) -> None:
        kind = record.get("type")
        t = float(record["t"])
        if kind == "snapshot":
            for data in record.get("speakers") or []:
                if isinstance(data, dict):
                    state.restore(Speaker.from_json(data, t))
        elif kind == "speaker":
            state.restore(Speaker.from_json(record, t))
        elif kind == "dropout":
            self.detector.observe(record, t)
            state.version += 1
        self._publish([RawEvent(t, dict(record))])

    def _status(self, state: SourceState, detail: str) -> None:
        events: list[Event] = self.mirror.state.set_source(
            SourceStatus(state, detail, "replay"), self.now
        )
        self._publish(events)
