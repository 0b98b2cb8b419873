"""Drift from repeated probes (pure): offsets from the fleet median, the spread, the drift
rate in ppm measured against a known clock error, the 15/40 ms words, and log round trips."""

from __future__ import annotations

import random

import pytest

from core.fleet.describe import describe_probe
from core.fleet.events import ProbeEvent
from core.fleet.model import SpeakerProbe, sync_word
from core.probe.drift import DRIFT_MIN_SPAN_S, ProbeHistory, with_offsets

A, B, C = "00:00:00:00:00:0A", "00:00:00:00:00:0B", "00:00:00:00:00:0C"


def heard(address: str, latency: float) -> SpeakerProbe:
    return SpeakerProbe(address, address[-2:], True, latency + 50.0, latency)


def probe(t: float, latencies: dict[str, float | None]) -> ProbeEvent:
    results = [
        heard(a, v) if v is not None else SpeakerProbe(a, a[-2:], False)
        for a, v in latencies.items()
    ]
    with_offset, spread = with_offsets(results)
    return ProbeEvent(t, with_offset, spread)


def test_offsets_are_from_the_median_and_the_spread_is_max_minus_min() -> None:
    event = probe(0.0, {A: 170.0, B: 178.0, C: 42.0})
    offsets = {r.address: r.offset_ms for r in event.results}
    assert offsets == {A: 0.0, B: 8.0, C: -128.0}
    assert event.spread_ms == pytest.approx(136.0)


def test_a_speaker_not_heard_has_no_offset_and_does_not_move_the_median() -> None:
    event = probe(0.0, {A: 170.0, B: 180.0, C: None})
    assert [r.offset_ms for r in event.results] == [-5.0, 5.0, None]
    assert event.spread_ms == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("offset", "word"),
    [(0.0, "tight"), (-15.0, "tight"), (15.1, "loose"), (-40.0, "loose"), (40.5, "echo"),
     (None, "not heard")],
)  # fmt: skip
def test_sync_words_follow_the_15_and_40_ms_lines(offset: float | None, word: str) -> None:
    assert sync_word(offset) == word


@pytest.mark.parametrize("ppm", [-100.0, -25.0, 18.0, 60.0])
def test_drift_rate_is_recovered_from_noisy_probes(ppm: float) -> None:
    """A speaker whose clock runs `ppm` fast gains ppm µs of latency per second; probes every
    30 s with 0.1 ms of measurement noise give the rate back within 5 ppm."""
    rng = random.Random(int(ppm * 10))
    history = ProbeHistory()
    for i in range(12):
        t = 1000.0 + 30.0 * i
        drifting = 170.0 + ppm * 1e-6 * (t - 1000.0) * 1000.0 + rng.gauss(0, 0.1)
        history.add(probe(t, {A: drifting, B: 160.0 + rng.gauss(0, 0.1)}))
    rate = history.drift_ppm(A)
    assert rate is not None
    assert rate == pytest.approx(ppm, abs=5.0)
    assert abs(history.drift_ppm(B) or 0.0) < 5.0


def test_no_drift_rate_before_enough_probes_over_enough_time() -> None:
    history = ProbeHistory()
    history.add(probe(0.0, {A: 170.0, B: 160.0}))
    history.add(probe(DRIFT_MIN_SPAN_S / 2, {A: 171.0, B: 160.0}))
    history.add(probe(DRIFT_MIN_SPAN_S - 1, {A: 172.0, B: 160.0}))
    assert history.drift_ppm(A) is None
    history.add(probe(DRIFT_MIN_SPAN_S + 1, {A: 173.0, B: 160.0}))
    assert history.drift_ppm(A) is not None


def test_history_survives_the_event_log() -> None:
    """Probe events written as JSON and read back give the same summary (a restart)."""
    live = ProbeHistory()
    events = [probe(100.0 * i, {A: 170.0 + i, B: 160.0, C: None}) for i in range(4)]
    for event in events:
        live.add(event)
    restored = ProbeHistory()
    assert restored.load(e.to_json() for e in events) == 4
    assert restored.summary() == live.summary()
    summary = restored.summary()
    assert summary is not None
    assert set(summary.history) == {A, B}  # C was never heard
    assert len(summary.history[A]) == 4


def test_the_log_line_names_the_speakers_not_heard() -> None:
    event = probe(0.0, {A: 170.0, B: 182.0, C: None})
    line = describe_probe(event.to_json(), {C: "Foyer"})
    assert line == "probe: 2 of 3 speakers heard, spread 12.0 ms (tight) — NOT HEARD: Foyer"
    data = event.to_json()
    assert data["type"] == "probe"
    assert [r["sync"] for r in data["results"]] == ["tight", "tight", "not heard"]


def test_the_summary_is_built_once_per_change() -> None:
    """Snapshots ask for it ten times a second: the same object until a probe comes."""
    history = ProbeHistory()
    history.add(probe(0.0, {A: 170.0, B: 160.0}))
    first = history.summary()
    assert history.summary() is first
    history.add(probe(30.0, {A: 171.0, B: 160.0}))
    second = history.summary()
    assert second is not first and second is not None and second.t == 30.0
    history.problem = "no microphone"
    assert history.summary() is not second


def test_a_re_probe_of_one_speaker_keeps_the_fleet_view_and_its_offsets() -> None:
    """A miss checked again (one speaker probed alone) must not leave the drift panel showing
    that speaker only, nor give it an offset of 0 from itself."""
    history = ProbeHistory()
    history.add(probe(100.0, {A: 190.0, B: 192.0, C: None}))
    history.add(probe(108.0, {C: 250.0}))  # C heard again, 58-60 ms late
    summary = history.summary()
    assert summary is not None
    by_address = {r.address: r for r in summary.results}
    assert set(by_address) == {A, B, C}
    assert by_address[A].latency_ms == 190.0 and by_address[B].latency_ms == 192.0
    assert by_address[C].offset_ms == pytest.approx(250.0 - 192.0)  # from the fleet's median
    assert summary.spread_ms == pytest.approx(60.0)
    assert [o for _, o in summary.history[C]] == [pytest.approx(58.0)]
    assert len(summary.history[A]) == 1  # the others' history is not repeated
    history.add(probe(130.0, {A: 191.0, B: 191.0}))  # C no longer plays: a new fleet, its view
    summary = history.summary()
    assert summary is not None and {r.address for r in summary.results} == {A, B}
