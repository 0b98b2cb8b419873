"""Hearing each speaker through the fleet output: every speaker plays the same sound (the
fleet output feeds them all), so one speaker is measured at a time with the other stages
muted; a coded probe is played into the fleet output, the microphone records, and the
probe analysis finds the direct path's arrival (DESIGN §8).

BLOCKING (PortAudio and `pactl`): call from a thread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from core.align import stages
from core.align.stages import AlignError
from core.probe.analysis import analyze
from core.probe.audio import AudioError, Output, play_and_record
from core.probe.signals import ProbeSet, design_probes

#: Length of the probe played through the fleet output (s): the probe design's shortest
#: multisine is plenty in a quiet measurement and keeps each speaker's turn under a second.
PROBE_S: Final = 0.1
#: Recorded before the probe starts (s).
PRE_ROLL_S: Final = 0.1
#: Recorded after the probe's end on top of the longest stage (s): a speaker's own path
#: (Bluetooth codec, its buffer, the air) — SBC speakers measure 150-250 ms (DESIGN §1).
TAIL_S: Final = 0.45
#: Two measurements of one speaker that agree within this (ms) are taken as its arrival;
#: otherwise a third decides (the median). Measured: a steady stage repeats within 0.5 ms;
#: the first probe after loading a loopback can be hundreds of ms off.
CONSISTENT_MS: Final = 1.0
#: A single probe within this (ms) of the predicted arrival (the last measurement moved by
#: the change of delay) is taken as it is: a garbage probe is hundreds of ms off, a
#: reloaded stage lands within ~8 ms (measured), a steady one within 0.5 ms.
PLAUSIBLE_MS: Final = 15.0
#: Recorded after the predicted latest arrival (s), once arrivals are known.
TAIL_MARGIN_S: Final = 0.15
#: Wait after loading stages before measuring (s): they stay silent for 1.2-1.9 s (measured,
#: PulseAudio 16, 2 cores), plus a margin; a speaker still not heard is probed again.
STAGE_START_S: Final = 2.5
#: Most measurements of one speaker in one round.
MOST_TRIES: Final = 4


@dataclass(frozen=True, slots=True)
class Target:
    """A speaker in the fleet output: its address, name and sink."""

    address: str
    name: str
    sink: str


def fleet_probe(rate: int) -> ProbeSet:
    """The one probe played through the fleet output."""
    return design_probes(1, rate, duration_s=PROBE_S)


@dataclass
class FleetMic:
    """Measures arrivals through the fleet output with a microphone (PortAudio `input` or
    audio-server `source`)."""

    input_device: int | str | None = None
    source: str | None = None
    rate: int = 48_000
    #: Called after each single probe (for progress): (sink or None, arrival ms or None).
    on_probe: Callable[[str | None, float | None], None] | None = None

    def __post_init__(self) -> None:
        self.probe = fleet_probe(self.rate)
        #: address -> arrival minus delay at its last measurement (ms): the prediction.
        self._own: dict[str, float] = {}

    def once(self, tail_s: float) -> float | None:
        """One probe through the fleet output as it is now: the arrival (ms after the
        emission) of the earliest direct path, or None when nothing was heard."""
        try:
            capture = play_and_record(
                [Output(sink=stages.FLEET_SINK, device=None, signal=self.probe.signals[0])],
                rate=self.rate,
                input_device=self.input_device,
                source=self.source,
                pre_roll_s=PRE_ROLL_S,
                tail_s=tail_s,
            )
        except AudioError as exc:
            # Before anything was heard it is the microphone or the server (bad input);
            # after, something went away during the alignment.
            raise AlignError(str(exc), bad_input=not self._own) from exc
        arrival = analyze(capture.recording, capture.rate, self.probe).arrivals[0]
        if not arrival.detected or arrival.arrival_ms is None:
            return None
        return arrival.arrival_ms - capture.emission_s[0] * 1000.0

    def settle(self) -> None:
        """Wait until freshly loaded stages pass audio: measured on PulseAudio 16, a new
        loopback (and a new null sink) stays silent for 1.2-1.9 s after loading, then is
        right at once."""
        time.sleep(STAGE_START_S)

    def _tail(self, longest_delay_ms: int) -> float:
        return (stages.BASE_MS + longest_delay_ms) / 1000.0 + TAIL_S

    def arrivals(
        self, targets: Sequence[Target], delays_ms: dict[str, int]
    ) -> dict[str, float | None]:
        """Each target's arrival through the fleet output (ms), one speaker at a time,
        the others muted; None for a speaker not heard. Every stage is unmuted after.

        A speaker heard within PLAUSIBLE_MS of where its last measurement and its new delay
        put it (or heard at all, the first time) is taken at one probe; otherwise (a
        reloaded stage that landed off, a garbage probe) it is probed until two measurements
        agree."""
        expected = {
            t.address: self._own[t.address] + delays_ms.get(t.address, 0)
            for t in targets
            if t.address in self._own
        }
        longest = max(expected.values(), default=stages.BASE_MS + TAIL_S * 1000.0)
        tail = max(longest / 1000.0 + TAIL_MARGIN_S, self._tail(max(delays_ms.values(), default=0)))
        heard: dict[str, float | None] = {}
        try:
            inputs = stages.stage_inputs()
            for target in targets:
                if target.sink not in inputs:
                    raise AlignError(
                        f"the delay stage of {target.name} ({target.address}) is gone: its "
                        f"sink {target.sink} left the audio server (speaker disconnected?)",
                        bad_input=False,
                    )
            stages.solo(targets[0].sink if targets else None, inputs)
            playing = targets[0].sink if targets else None
            for target in targets:
                if playing != target.sink:
                    stages.switch(playing, target.sink, inputs)
                    playing = target.sink
                value = self._settled(target.sink, tail, expected.get(target.address))
                heard[target.address] = value
                if value is not None:
                    self._own[target.address] = value - delays_ms.get(target.address, 0)
        finally:
            try:
                stages.solo(None, stages.stage_inputs())
            except AlignError:
                pass  # the server is gone: the error that got us here says so
        return heard

    def _settled(self, sink: str, tail_s: float, expected: float | None) -> float | None:
        """One probe when it lands within PLAUSIBLE_MS of `expected` (or there is no
        expectation); otherwise probe until
        two measurements agree within CONSISTENT_MS (the median of the last three when none
        do), at most MOST_TRIES; None when never heard."""
        values: list[float] = []
        for _ in range(MOST_TRIES):
            value = self.once(tail_s)
            if self.on_probe is not None:
                self.on_probe(sink, value)
            if value is None:
                continue
            if not values and (expected is None or abs(value - expected) <= PLAUSIBLE_MS):
                # The first round has no prediction: a garbage value there shows up as a
                # miss of the next round's prediction, which then probes until two agree.
                return value
            close = [v for v in values if abs(value - v) <= CONSISTENT_MS]
            if close:
                return (value + close[-1]) / 2.0
            values.append(value)
        if len(values) >= 3:
            return statistics.median(values[-3:])
        return None
