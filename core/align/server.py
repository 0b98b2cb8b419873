"""Aligning on the audio server (PulseAudio, pipewire-pulse): the speakers' sinks, the fleet
output and its stages set up, the loop run with the microphone, and the server put back as it
was found when the alignment fails. Shared by `btmon-tui align` and `A` in the TUI (which
runs it in a worker thread). BLOCKING: run it from a thread in an event loop's program."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from core.align import keep, plan, stages
from core.align.loop import Outcome, Round, align
from core.align.measure import FleetMic, Target
from core.align.stages import AlignError
from core.fleet.model import Speaker
from core.probe.sinks import sink_for_address, sink_names_for

#: Called with each round, its verdict and the delays planned next (progress).
OnRound = Callable[[Round, plan.Verdict, dict[str, int]], None]


def server_targets(speakers: Sequence[Speaker], mapped: Mapping[str, str]) -> list[Target]:
    """Each speaker with its audio-server sink (`mapped` first, e.g. --sink, then the naming
    rule). AlignError (bad input) when one has none, or when there is no audio server."""
    known = stages.sinks()
    targets = []
    for speaker in speakers:
        sink = mapped.get(speaker.address.upper()) or sink_for_address(speaker.address, known)
        if sink is None or sink not in known:
            looked = sink if sink else " or ".join(sink_names_for(speaker.address))
            raise AlignError(
                f"no audio-server sink for {speaker.name} ({speaker.address}): looked for "
                f"{looked}; pass --sink {speaker.address}=SINK (`pactl list short sinks`)"
            )
        if sink == stages.FLEET_SINK:
            raise AlignError(
                f"{speaker.name}'s sink cannot be the fleet output {stages.FLEET_SINK}"
            )
        targets.append(Target(speaker.address, speaker.name, sink))
    return targets


@dataclass
class ServerAlign:
    """One alignment through the fleet output: what to align, with which microphone, how
    tight; `run` does it (BLOCKING), `on_apply` hears each set of delays before it is applied
    (address -> ms) and `on_start` a line before the first measurement."""

    targets: Sequence[Target]
    input_device: int | str | None = None
    source: str | None = None
    target_ms: float = 5.0
    rounds: int = plan.DEFAULT_ROUNDS
    dry_run: bool = False
    on_round: OnRound | None = None
    on_apply: Callable[[dict[str, int]], None] | None = None
    on_start: Callable[[str], None] | None = None
    #: Why the applied delays could not be saved for reconnects ('' when they were).
    saved_problem: str = ""

    def run(self) -> Outcome:
        """Set up the fleet output and stages, run the loop; on failure (AlignError,
        interruption) and after a dry run, the modules this run loaded go and the stages it
        changed get their old delays back."""
        prior = stages.stages()
        created = stages.ensure_fleet()
        mic = FleetMic(input_device=self.input_device, source=self.source)
        by_address = {t.address: t.sink for t in self.targets}

        def apply(delays: dict[str, int]) -> None:
            if self.on_apply is not None:
                self.on_apply(delays)
            stages.apply({by_address[a]: d for a, d in delays.items()})
            mic.settle()

        try:
            current = {
                t.address: prior[t.sink].delay_ms if t.sink in prior else 0 for t in self.targets
            }
            if self.on_start is not None:
                self.on_start(
                    f"{len(self.targets)} speaker(s) through {stages.FLEET_SINK}; measuring "
                    "each in turn (the others muted)"
                )
            loaded = [t for t in self.targets if t.sink not in prior]
            stages.apply({t.sink: current[t.address] for t in self.targets})
            if loaded or created:
                mic.settle()
            outcome = align(
                self.targets,
                current,
                measure=mic.arrivals,
                apply=apply,
                target_ms=self.target_ms,
                rounds=self.rounds,
                dry_run=self.dry_run,
                on_round=self.on_round,
            )
        except BaseException:
            restore(prior, created)
            raise
        if self.dry_run:
            restore(prior, created)
        else:  # kept for a speaker that reconnects (core.align.keep)
            self.saved_problem = keep.save(
                {stage.sink: stage.delay_ms for stage in stages.stages().values()}
            )
        return outcome


def restore(prior: Mapping[str, stages.Stage], created: bool) -> None:
    """Put the server back as a run found it: stages it loaded go, stages it changed get
    their old delay back, the fleet output goes when the run loaded it."""
    try:
        if created:
            stages.reset(remove_fleet=True)
            return
        present = set(stages.sinks())
        for sink, stage in stages.stages().items():
            if sink in prior and sink in present:
                stages.attach(sink, prior[sink].delay_ms)
            elif sink not in prior:
                stages.unload(stage.module)
    except AlignError:
        pass  # the server is gone: nothing of ours is loaded on it any more
