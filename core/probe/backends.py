"""The microphone backend of a probe: each speaker's signal on its own audio-server sink
(PulseAudio or PipeWire name Bluetooth sinks after the address), one input recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.probe.runner import ProbeFailed, Recording, Target

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class MicBackend:
    """Real audio through PortAudio (core.probe.audio)."""

    source = "microphone"

    def __init__(
        self,
        *,
        input_device: int | str | None = None,
        pulse_source: str | None = None,
        sinks: dict[str, str] | None = None,
    ) -> None:
        """`input_device`: PortAudio input (index or name); `pulse_source`: an audio-server
        source to record instead (PULSE_SOURCE); `sinks`: address -> sink name overrides."""
        self.input_device = input_device
        self.pulse_source = pulse_source
        self.sinks = dict(sinks or {})

    def capture(
        self, targets: Sequence[Target], signals: NDArray[np.float64], rate: int
    ) -> Recording:
        import core.probe.audio as audio

        try:
            known = audio.list_sinks()
            outputs = []
            for target in targets:
                sink = self.sinks.get(target.address) or audio.sink_for_address(
                    target.address, known
                )
                if sink is None:
                    raise ProbeFailed(
                        f"no audio-server sink for {target.name} ({target.address}): "
                        "is it the audio server's output? (`pactl list short sinks`)"
                    )
                outputs.append(
                    audio.Output(sink=sink, device=None, signal=signals[target.index - 1])
                )
            capture = audio.play_and_record(
                outputs, rate=rate, input_device=self.input_device, source=self.pulse_source
            )
        except audio.AudioError as exc:
            raise ProbeFailed(str(exc)) from exc
        return Recording(capture.rate, capture.recording, capture.emission_s, capture.warnings)
