"""ReplayMonitor: plays a recorded session from the event log through the same UI (`--replay`).

It is a Monitor whose source is the log instead of BlueZ: recorded speakers are put in place
as they were (not re-judged), recorded dropouts feed the same detector, recorded probes the
drift panel, and the clock is the recording's, running `speed` times faster, so ages and
countdowns read as they did then. It can pause, seek and change speed as it plays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Final

from core.dropout import DropoutDetector
from core.events import Event, RawEvent
from core.model import SourceState, SourceStatus, Speaker
from core.monitor import Monitor
from core.probe.drift import ProbeHistory

#: The longest real pause between two replayed events (a quiet hour need not take an hour).
MAX_PAUSE_S: Final = 2.0
#: Slowest and fastest replay speeds the speed keys reach (1/8 x real time; the fastest is
#: the command line's own limit for --speed).
MIN_SPEED, MAX_SPEED = 0.125, 1000.0


def recorded_names(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Address -> the last name the recording gives it (speaker rows and snapshots), so lines
    about dropouts recorded before the first snapshot name their speaker."""
    names: dict[str, str] = {}
    for record in records:
        rows = record.get("speakers") if record.get("type") == "snapshot" else [record]
        for row in rows or ():
            if isinstance(row, Mapping) and row.get("type", "speaker") == "speaker":
                address, name = row.get("address"), row.get("name")
                if address and name:
                    names[str(address)] = str(name)
    return names


class ReplayMonitor(Monitor):
    """A Monitor fed from recorded §4.2 records in time order."""

    live = False

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
        self.names = recorded_names(self.records)
        #: Index of the next record to play; True while the operator paused the replay.
        self.position = 0
        self.paused = False
        #: Set to cut a wait short: paused, resumed, moved or sped up.
        self._wake = asyncio.Event()

    @property
    def start_t(self) -> float:
        return float(self.records[0]["t"]) if self.records else 0.0

    @property
    def end_t(self) -> float:
        return float(self.records[-1]["t"]) if self.records else 0.0

    async def run(self) -> None:
        state = self.state
        self._say_where()
        while True:
            if self.position >= len(self.records) and not self.finished.is_set():
                self._status(
                    SourceState.CONNECTED,
                    f"replay of {self.label} finished: {len(self.records)} events; "
                    "← goes back, q quits",
                )
                self.finished.set()
            if self.paused or self.position >= len(self.records):
                await self._rest(None)  # until resumed or moved
                continue
            record = self.records[self.position]
            t = float(record["t"])
            # Before the first fleet is known there is nothing to watch: no waiting.
            wait = min((t - self.now) / self.speed, MAX_PAUSE_S)
            if t > self.now and state.speakers and await self._rest(wait):
                continue  # paused, moved or sped up meanwhile: look again
            self.now = max(self.now, t)
            self._apply(state, record)
            self.position += 1
            if self.position % 200 == 0:
                await asyncio.sleep(0)  # let the UI render during bursts

    async def _rest(self, seconds: float | None) -> bool:
        """Wait `seconds` (None: until woken); True when woken before that."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def pause(self, paused: bool) -> None:
        self.paused = paused
        self._say_where()
        self._wake.set()

    def set_speed(self, speed: float) -> None:
        self.speed = min(MAX_SPEED, max(MIN_SPEED, speed))
        self._say_where()
        self._wake.set()

    def seek(self, delta_s: float) -> None:
        """Move the replay's clock by `delta_s` (within the recording). Forward plays the
        records on the way at once; back starts again from the first record and plays up to
        there, so dropouts, periods and the drift panel are as they were at that moment."""
        target = min(self.end_t, max(self.start_t, self.now + delta_s))
        if target < self.now:
            self._rewind()
        state = self.state
        while (
            self.position < len(self.records) and float(self.records[self.position]["t"]) <= target
        ):
            record = self.records[self.position]
            self.now = max(self.now, float(record["t"]))
            self._apply(state, record)
            self.position += 1
        self.now = max(self.now, target)
        if self.position < len(self.records):
            self.finished.clear()
            self._say_where()
        self._wake.set()

    def _rewind(self) -> None:
        """Back to before the first record: no speakers, dropouts or probes yet."""
        self.state.speakers.clear()
        self.changed()
        self.detector = DropoutDetector()
        self.probes = ProbeHistory()
        self.position = 0
        self.now = self.start_t

    def _say_where(self) -> None:
        how = "paused" if self.paused else f"at {self.speed:g}×"
        self._status(SourceState.CONNECTED, f"replaying {self.label} {how}")

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
            self.changed()
        elif kind == "probe":  # the drift panel shows what the microphone heard then
            self.probes.load([record])
            self.changed()
        self._publish([RawEvent(t, dict(record))])

    def _status(self, state: SourceState, detail: str) -> None:
        events: list[Event] = self.state.set_source(SourceStatus(state, detail, "replay"), self.now)
        self._publish(events)
