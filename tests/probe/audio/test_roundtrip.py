"""Real audio: three speakers on three PulseAudio sinks, one room monitor as microphone,
through sounddevice; the arrivals must come in the right order at the intended offsets."""

from __future__ import annotations

import numpy as np
import pytest

from core.probe.audio import Output, play_and_record
from tests.probe.audio.conftest import SPEAKERS, PulseServer
from tests.probe.audio.signals import RATE, arrival_s, burst, with_lead

#: Leading silence per speaker: the offsets the probe must find.
LEADS_S = (0.0, 0.007, 0.023)
#: |arrival - emission - lead|, measured over 160 three-speaker probes (480 offsets) on
#: this 2-core machine shared with other jobs: median 0.07 ms, p90 0.20 ms, p99 0.71 ms,
#: max 1.76 ms (4 offsets above 1 ms). Every offset must be within BOUND_S and the median
#: of a run within TYPICAL_S: the 1 ms target holds for the typical probe, and a rare
#: stray (PulseAudio mixing a starting stream one room block off) stays bounded.
BOUND_S = 0.0025
TYPICAL_S = 0.0003
#: Probes per set (each ~0.4 s), and sets when the first is disturbed by load.
RUNS = 4
ATTEMPTS = 2


def probe_once() -> tuple[list[float], tuple[str, ...]]:
    """One probe; the per-speaker error (arrival - emission - lead) in seconds."""
    references = [burst(seed=10 + i) for i in range(len(SPEAKERS))]
    outputs = [
        Output(sink=sink, device=None, signal=with_lead(reference, lead))
        for sink, reference, lead in zip(SPEAKERS, references, LEADS_S, strict=True)
    ]
    capture = play_and_record(outputs, rate=RATE, source="room.monitor", pre_roll_s=0.1, tail_s=0.1)
    assert capture.rate == RATE
    assert capture.recording.dtype == np.float64
    arrivals = [arrival_s(capture.recording, r) for r in references]
    assert sorted(range(3), key=lambda i: arrivals[i]) == [0, 1, 2], arrivals
    errors = [
        arrival - emission - lead
        for arrival, emission, lead in zip(arrivals, capture.emission_s, LEADS_S, strict=True)
    ]
    return errors, capture.warnings


def test_three_speakers_order_and_offsets(pulse: PulseServer) -> None:
    """Every offset within BOUND_S and the median within TYPICAL_S. This machine is shared:
    under another job's load PulseAudio mixes a starting stream a block or two off (seen in
    CI: one offset of 12 at 5.8 ms, the rest under 2.2 ms). A wrong emission time is off in
    every probe, so a second set of probes is taken when the first is disturbed, and the
    bounds must hold for one of the two."""
    shown: list[list[float]] = []
    for _ in range(ATTEMPTS):
        errors: list[float] = []
        for _ in range(RUNS):
            run_errors, warnings = probe_once()
            assert not [w for w in warnings if "silent" in w or "clipped" in w], warnings
            errors.extend(run_errors)
        shown.append(np.round(np.array(errors) * 1e3, 3).tolist())
        if max(abs(e) for e in errors) < BOUND_S and np.median(np.abs(errors)) < TYPICAL_S:
            return
    pytest.fail(f"offset errors (ms) in {ATTEMPTS} sets of {RUNS} probes: {shown}")


def test_silent_speaker_is_flagged(pulse: PulseServer) -> None:
    capture = play_and_record(
        [Output(sink="spk1", device=None, signal=np.zeros(2400))],
        rate=RATE,
        source="room.monitor",
        pre_roll_s=0.05,
        tail_s=0.05,
    )
    assert any("silent" in w for w in capture.warnings), capture.warnings
    assert capture.clipped_fraction == 0.0


def test_full_scale_is_flagged_as_clipping(pulse: PulseServer) -> None:
    square = np.sign(np.sin(2 * np.pi * 500 * np.arange(4800) / RATE))
    capture = play_and_record(
        [Output(sink="spk2", device=None, signal=square)],
        rate=RATE,
        source="room.monitor",
        pre_roll_s=0.05,
        tail_s=0.05,
    )
    assert capture.clipped_fraction > 0.01
    assert any("clipped" in w for w in capture.warnings), capture.warnings


@pytest.mark.parametrize("lead", [0.0, 0.0125])
def test_single_speaker_latency_is_its_lead(pulse: PulseServer, lead: float) -> None:
    """The median of three probes within BOUND_S (one disturbed by load stays one)."""
    reference = burst(seed=3)
    errors = []
    for _ in range(3):
        capture = play_and_record(
            [Output(sink="spk3", device=None, signal=with_lead(reference, lead))],
            rate=RATE,
            source="room.monitor",
            pre_roll_s=0.05,
            tail_s=0.05,
        )
        errors.append(arrival_s(capture.recording, reference) - capture.emission_s[0] - lead)
    assert abs(float(np.median(errors))) < BOUND_S, [round(e * 1e3, 3) for e in errors]
