"""The replay of a recorded session (`--replay`): a source that plays the event log's records
through the same Monitor and UI.

Recorded speakers are put in place as they were (not re-judged), recorded dropouts feed the
same detector, recorded probes the drift panel, and the clock is the recording's, running
`speed` times faster, so ages and countdowns read as they did then. It can pause, seek and
change speed as it plays. It has no control: a replay cannot act on speakers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Final

from core.fleet.model import SourceState, SourceStatus
from core.monitor import Monitor
from core.sources import Record, Rewind, Source, Status

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


class ReplaySource(Source):
    """Recorded §4.2 records fed in time order, paced by the recording's clock (`now`)."""

    name = "replay"

    def __init__(
        self, records: Iterable[Mapping[str, Any]], *, label: str, speed: float = 1.0
    ) -> None:
        self.records = sorted(records, key=lambda r: float(r["t"]))
        self.speed = speed
        self.label = label
        #: The recording's clock: the time of the last record played (or where a seek went).
        self.now = self.start_t
        self.finished = asyncio.Event()
        self.names = recorded_names(self.records)
        #: Index of the next record to play; True while the operator paused the replay.
        self.position = 0
        self.paused = False
        #: Set to cut a wait short: paused, resumed, moved or sped up.
        self._wake = asyncio.Event()
        self._status = SourceStatus(SourceState.CONNECTING, f"replaying {label}", "replay")

    @property
    def start_t(self) -> float:
        return float(self.records[0]["t"]) if self.records else 0.0

    @property
    def end_t(self) -> float:
        return float(self.records[-1]["t"]) if self.records else 0.0

    @property
    def status(self) -> SourceStatus:
        return self._status

    async def run(self) -> None:
        sink = self.sink
        self._say_where()
        while True:
            if self.position >= len(self.records) and not self.finished.is_set():
                self._set_status(
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
            if t > self.now and sink.speakers and await self._rest(wait):
                continue  # paused, moved or sped up meanwhile: look again
            self.now = max(self.now, t)
            sink.feed(Record(record))
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
            self.sink.feed(Rewind())
            self.position = 0
            self.now = self.start_t
        while (
            self.position < len(self.records) and float(self.records[self.position]["t"]) <= target
        ):
            record = self.records[self.position]
            self.now = max(self.now, float(record["t"]))
            self.sink.feed(Record(record))
            self.position += 1
        self.now = max(self.now, target)
        if self.position < len(self.records):
            self.finished.clear()
            self._say_where()
        self._wake.set()

    def _say_where(self) -> None:
        how = "paused" if self.paused else f"at {self.speed:g}×"
        self._set_status(SourceState.CONNECTED, f"replaying {self.label} {how}")

    def _set_status(self, state: SourceState, detail: str) -> None:
        self._status = SourceStatus(state, detail, "replay")
        self.sink.feed(Status(self._status))


class ReplayMonitor(Monitor):
    """A Monitor whose one source is a recording (a ReplaySource): no BlueZ, no actions."""

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        label: str,
        speed: float = 1.0,
        **kwargs: Any,
    ) -> None:
        #: The recording being played.
        self.recording = ReplaySource(records, label=label, speed=speed)
        super().__init__(sources=[self.recording], clock=self._recorded_now, **kwargs)

    def _recorded_now(self) -> float:
        return self.recording.now

    # The replay's controls and position, as the UI reads them.
    @property
    def records(self) -> list[Mapping[str, Any]]:
        return self.recording.records

    @property
    def label(self) -> str:
        return self.recording.label

    @property
    def names(self) -> dict[str, str]:
        return self.recording.names

    @property
    def finished(self) -> asyncio.Event:
        return self.recording.finished

    @property
    def now(self) -> float:
        return self.recording.now

    @property
    def speed(self) -> float:
        return self.recording.speed

    @property
    def paused(self) -> bool:
        return self.recording.paused

    @property
    def position(self) -> int:
        return self.recording.position

    @property
    def start_t(self) -> float:
        return self.recording.start_t

    @property
    def end_t(self) -> float:
        return self.recording.end_t

    def pause(self, paused: bool) -> None:
        self.recording.pause(paused)

    def set_speed(self, speed: float) -> None:
        self.recording.set_speed(speed)

    def seek(self, delta_s: float) -> None:
        self.recording.seek(delta_s)
