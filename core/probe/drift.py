"""Drift from repeated probes: each speaker's offset history and its clock drift rate (ppm).

Pure: probes come in as events, time as data. The thresholds are DESIGN §1/§8's: within 15 ms
the fleet is tight, beyond 40 ms listeners hear an echo.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from core.fleet.events import ProbeEvent
from core.fleet.model import ECHO_MS, TIGHT_MS, DriftSummary, SpeakerProbe, sync_word

__all__ = ["ECHO_MS", "TIGHT_MS", "ProbeHistory", "sync_word", "with_offsets"]

#: Probes kept per speaker for the plot and the drift rate (five-minute probes: ~2 days).
HISTORY: Final = 500
#: The drift rate needs this many probes of a speaker spanning at least DRIFT_MIN_SPAN_S: a
#: 100 ppm clock moves 6 ms a minute, so a minute's span tells it apart from probe noise.
DRIFT_MIN_PROBES: Final = 3
DRIFT_MIN_SPAN_S: Final = 60.0
#: Only this many most recent probes make the rate (a reconnect resets the latency).
DRIFT_WINDOW: Final = 20


def with_offsets(results: Iterable[SpeakerProbe]) -> tuple[tuple[SpeakerProbe, ...], float | None]:
    """Each heard speaker's offset from the fleet's median latency, and the spread (ms)."""
    results = tuple(results)
    latencies = sorted(r.latency_ms for r in results if r.detected and r.latency_ms is not None)
    if not latencies:
        return results, None
    middle = len(latencies) // 2
    median = (
        latencies[middle] if len(latencies) % 2 else (latencies[middle - 1] + latencies[middle]) / 2
    )
    spread = latencies[-1] - latencies[0] if len(latencies) > 1 else None
    out = tuple(
        _replace_offset(r, r.latency_ms - median)
        if r.detected and r.latency_ms is not None
        else _replace_offset(r, None)
        for r in results
    )
    return out, spread


def _replace_offset(result: SpeakerProbe, offset: float | None) -> SpeakerProbe:
    return SpeakerProbe(
        result.address,
        result.name,
        result.detected,
        result.arrival_ms,
        result.latency_ms,
        offset,
        result.snr_db,
        result.level_dbfs,
    )


def _merged(fleet: ProbeEvent, few: ProbeEvent) -> ProbeEvent:
    """`few` (a probe of some of `fleet`'s speakers, newer) with the rest of `fleet`'s
    results, offsets and spread over them all."""
    new = {r.address: r for r in few.results}
    results, spread = with_offsets(new.get(r.address, r) for r in fleet.results)
    return replace(few, results=results, spread_ms=spread)


class ProbeHistory:
    """Every probe seen (live or from the log), per speaker; summarised for the drift panel."""

    def __init__(self) -> None:
        self.latest: ProbeEvent | None = None
        #: The summary of the probes so far, built once per change (snapshots ask ~10x/s).
        self._summary: tuple[object, DriftSummary | None] | None = None
        #: Address -> deque of (t, latency_ms, offset_ms) of the probes that heard it.
        self._heard: dict[str, deque[tuple[float, float, float]]] = {}
        self.problem = ""

    def add(self, event: ProbeEvent) -> None:
        probed = {r.address for r in event.results}
        latest = self.latest
        if (
            latest is not None
            and event.played >= latest.played
            and probed <= {r.address for r in latest.results if not r.detected}
            and len(probed) < len(latest.results)
        ):
            # A miss checked again (those the last probe did not hear, alone): the fleet's
            # view keeps the others' results, and the offsets of those probed are from the
            # fleet's median, not from their own.
            event = _merged(latest, event)
        if latest is None or event.played >= latest.played:
            self.latest = event
            self.problem = ""
        for result in (r for r in event.results if r.address in probed):
            if not result.detected or result.latency_ms is None or result.offset_ms is None:
                continue
            series = self._heard.setdefault(result.address, deque(maxlen=HISTORY))
            series.append((event.played, result.latency_ms, result.offset_ms))

    def load(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Probe records of the event log (oldest first); returns how many were taken."""
        count = 0
        for record in records:
            if record.get("type") == "probe":
                self.add(ProbeEvent.from_json(dict(record)))
                count += 1
        return count

    def drift_ppm(self, address: str) -> float | None:
        """Least-squares slope of the latency over time, in ppm; None until enough probes."""
        series = list(self._heard.get(address, ()))[-DRIFT_WINDOW:]
        if len(series) < DRIFT_MIN_PROBES or series[-1][0] - series[0][0] < DRIFT_MIN_SPAN_S:
            return None
        times = [t for t, _, _ in series]
        latencies = [latency for _, latency, _ in series]
        mean_t = sum(times) / len(times)
        mean_l = sum(latencies) / len(latencies)
        den = sum((t - mean_t) ** 2 for t in times)
        slope_ms_per_s = (
            sum((t - mean_t) * (v - mean_l) for t, v in zip(times, latencies, strict=True)) / den
        )
        return slope_ms_per_s * 1000.0  # ms per s -> µs per s = ppm

    def summary(self) -> DriftSummary | None:
        key = (self.latest, self.problem, sum(len(s) for s in self._heard.values()))
        if self._summary is None or self._summary[0] != key:
            self._summary = (key, self._build_summary())
        return self._summary[1]

    def _build_summary(self) -> DriftSummary | None:
        latest = self.latest
        if latest is None:
            if not self.problem:
                return None
            return DriftSummary(t=0.0, results=(), spread_ms=None, problem=self.problem)
        history = {a: tuple((t, off) for t, _, off in s) for a, s in self._heard.items()}
        rates = {a: r for a in self._heard if (r := self.drift_ppm(a)) is not None}
        return DriftSummary(
            t=latest.played,
            results=latest.results,
            spread_ms=latest.spread_ms,
            history=history,
            drift_ppm=rates,
            source=latest.source,
            problem=self.problem,
        )
