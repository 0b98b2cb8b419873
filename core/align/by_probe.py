"""Aligning through a probe backend (the TUI's `A`): each round is one probe of the speakers
being aligned, all at once through `backend` (each has its own code), its result handed to
`record` (so the drift panel follows every round), and the delays set through a fleet output.

The demo's simulated room is such an output (its stages add delay to each speaker's latency).
The command line's `align` measures one speaker at a time through PulseAudio's `btmon_fleet`
instead (core.align.measure) and applies module-loopback stages (core.align.stages).
BLOCKING: run it from a thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from core.align import plan
from core.align.loop import Outcome, Round, align
from core.align.measure import Target
from core.fleet.events import ProbeEvent
from core.fleet.model import Speaker
from core.probe.runner import Backend, run_blocking
from core.probe.runner import Target as ProbeTarget


@runtime_checkable
class FleetOutput(Protocol):
    """Where per-speaker delays are applied: the sink the player plays to, and its stages."""

    #: What the player plays to (the `sink` of the align event).
    sink: str

    def delays(self) -> dict[str, int]:
        """The delay each speaker's stage adds now (ms)."""
        ...

    def apply(self, delays_ms: dict[str, int]) -> None:
        """Set each speaker's delay (ms)."""
        ...


def align_by_probe(
    backend: Backend,
    output: FleetOutput,
    speakers: Sequence[Speaker],
    *,
    record: Callable[[ProbeEvent], None],
    clock: Callable[[], float] = time.time,
    target_ms: float = 5.0,
    rounds: int = plan.DEFAULT_ROUNDS,
    on_round: Callable[[Round, plan.Verdict, dict[str, int]], None] | None = None,
) -> tuple[Outcome, list[Target], tuple[str, ...]]:
    """Align those of `speakers` that the first probe hears (a speaker not heard cannot be
    aligned: it is left out and named, not a reason to stop); the outcome, the targets
    aligned and the names left out."""

    def probe(chosen: Sequence[Speaker]) -> dict[str, float | None]:
        targets = [ProbeTarget(s.address, s.name, i + 1) for i, s in enumerate(chosen)]
        event = run_blocking(backend, targets, clock=clock)
        record(event)
        return {r.address: r.latency_ms if r.detected else None for r in event.results}

    first = probe(speakers)
    chosen = [s for s in speakers if first.get(s.address) is not None]
    left_out = tuple(s.name for s in speakers if first.get(s.address) is None)
    targets = [Target(s.address, s.name, output.sink) for s in chosen]
    if len(chosen) < 2:
        why = "fewer than two speakers heard: nothing to align"
        return Outcome(why=why), targets, left_out
    current = output.delays()
    reuse = [{a: first[a] for a in (s.address for s in chosen)}]

    def measure(_targets: Sequence[Target], _delays: dict[str, int]) -> dict[str, float | None]:
        return reuse.pop() if reuse else probe(chosen)

    outcome = align(
        targets,
        {t.address: current.get(t.address, 0) for t in targets},
        measure=measure,
        apply=output.apply,
        target_ms=target_ms,
        rounds=rounds,
        on_round=on_round,
    )
    return outcome, targets, left_out
