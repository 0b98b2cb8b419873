"""The HCI feed as a Monitor source: each tick, the media rates a live HCI reader counts
(core.hci.live.HciLive) go to the fleet, where they decide `streaming` and `stalled`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from core.fleet.model import FleetSnapshot, SourceState, SourceStatus
from core.fleet.state import MediaFacts
from core.sources import Media, MediaExpected, Source, SourceSink


class MediaRate(Protocol):
    """Media packets/s of one address and its last media packet (Unix s), from HCI."""

    @property
    def pps(self) -> float: ...
    @property
    def last_media_t(self) -> float | None: ...
    @property
    def since(self) -> float | None: ...


class MediaSource(Protocol):
    """A live HCI reader (core.hci.live.HciLive): per-address media rates."""

    @property
    def status(self) -> str: ...
    @property
    def caught_up(self) -> bool: ...
    async def run(self) -> None: ...
    def rates(self, now: float) -> Mapping[str, MediaRate]: ...


class HciSource(Source):
    """Runs a MediaSource and hands its rates to the Monitor on every tick."""

    name = "HCI"

    def __init__(self, reader: MediaSource) -> None:
        self.reader = reader

    def attach(self, sink: SourceSink) -> None:
        super().attach(sink)
        sink.feed(MediaExpected())  # no `streaming` on BlueZ's word alone until HCI spoke

    @property
    def status(self) -> SourceStatus:
        state = SourceState.CONNECTED if self.reader.caught_up else SourceState.CONNECTING
        return SourceStatus(state, self.reader.status)

    async def run(self) -> None:
        await self.reader.run()

    def tick(self, now: float) -> None:
        rates = self.reader.rates(now)
        facts = {a: MediaFacts(r.pps, r.last_media_t, r.since) for a, r in rates.items()}
        self.sink.feed(Media(facts, caught_up=self.reader.caught_up))

    def view(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        return replace(snapshot, hci_status=self.reader.status)
