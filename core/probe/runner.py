"""One probe, end to end: pick the speakers that should play, give each its coded signal,
play and record (a microphone, or the demo's simulated room), analyse, and turn the arrivals
into latencies and offsets (DESIGN §8).

Blocking work (PortAudio, FFTs) runs in a worker thread via `asyncio.to_thread`; the event
loop only waits. Every failure becomes a `ProbeFailed` whose message says what to do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from core.fleet.events import ProbeEvent
from core.fleet.model import Speaker, SpeakerProbe, Verdict
from core.probe.drift import with_offsets

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: Probe sample rate: what PulseAudio/PipeWire and A2DP sinks run at (48 kHz is native to
#: both servers; 44.1 kHz sinks resample).
PROBE_RATE: Final = 48_000
#: Verdicts of speakers that should be playing: their A2DP transport is active.


class ProbeFailed(Exception):
    """The probe could not run (no PortAudio, no microphone, a sink gone…): the message says
    what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class Target:
    """A speaker to probe and the 1-based index of its signal in the probe set."""

    address: str
    name: str
    index: int


@dataclass(frozen=True, slots=True)
class Recording:
    """What a backend captured: mono samples, their rate, and when each target's probe left
    the host, in seconds from the recording's first sample."""

    rate: int
    samples: NDArray[np.float64]
    emission_s: tuple[float, ...]
    warnings: tuple[str, ...] = ()


class Backend(Protocol):
    """Plays each target's signal on that speaker and records the room (blocking)."""

    #: "microphone" or "simulated room": shown next to every result.
    source: str

    def capture(
        self, targets: Sequence[Target], signals: NDArray[np.float64], rate: int
    ) -> Recording: ...


def sent_audio(speaker: Speaker) -> bool:
    """Audio is sent to it: connected with an active A2DP transport (streaming or stalled,
    or still awaiting HCI's word on it: the probe is the other witness)."""
    transport = speaker.transport
    return (
        speaker.connected
        and speaker.verdict != Verdict.UNKNOWN
        and transport is not None
        and transport.sending
    )


def targets_for(speakers: Sequence[Speaker], only: Sequence[str] = ()) -> list[Target]:
    """The speakers that should play (transport active), or the `only` addresses asked for."""
    wanted = {a.upper() for a in only}
    chosen = [
        s for s in speakers if s.in_fleet and (s.address in wanted if wanted else sent_audio(s))
    ]
    return [Target(s.address, s.name, i + 1) for i, s in enumerate(chosen)]


def run_blocking(
    backend: Backend,
    targets: Sequence[Target],
    *,
    clock: Callable[[], float] = time.time,
    rate: int = PROBE_RATE,
) -> ProbeEvent:
    """Design the signals, capture, analyse; a ProbeEvent stamped when the sound was played."""
    if not targets:
        raise ProbeFailed("no speaker is playing: start playback, or name speakers to probe")
    # numpy and the DSP load on the first probe only: the TUI starts without them.
    from core.probe.analysis import ProbeError, analyze
    from core.probe.signals import design_probes

    probes = design_probes(len(targets), rate)
    t = clock()
    recording = backend.capture(targets, probes.signals, rate)
    try:
        analysis = analyze(recording.samples, recording.rate, probes)
    except ProbeError as exc:
        raise ProbeFailed(str(exc)) from exc
    results = []
    for target, arrival in zip(targets, analysis.arrivals, strict=True):
        latency = None
        if arrival.detected and arrival.arrival_ms is not None:
            latency = arrival.arrival_ms - recording.emission_s[target.index - 1] * 1000.0
        results.append(
            SpeakerProbe(
                address=target.address,
                name=target.name,
                detected=arrival.detected,
                arrival_ms=arrival.arrival_ms,
                latency_ms=latency,
                snr_db=arrival.snr_db,
                level_dbfs=arrival.level_dbfs,
            )
        )
    with_offset, spread = with_offsets(results)
    return ProbeEvent(
        t,
        with_offset,
        spread,
        backend.source,
        tuple(recording.warnings) + tuple(analysis.warnings),
    )


async def run_probe(
    backend: Backend,
    targets: Sequence[Target],
    *,
    clock: Callable[[], float] = time.time,
    rate: int = PROBE_RATE,
) -> ProbeEvent:
    """`run_blocking` off the event loop."""
    return await asyncio.to_thread(run_blocking, backend, targets, clock=clock, rate=rate)


def missed(event: ProbeEvent) -> frozenset[str]:
    """Addresses the probe played to but did not hear."""
    return frozenset(r.address for r in event.results if not r.detected)
