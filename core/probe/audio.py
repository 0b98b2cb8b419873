"""Audio I/O of a probe through PortAudio (sounddevice): each speaker's signal on that
speaker's audio-server sink while one input records the room (DESIGN §8).

Routing: the ALSA `pulse` device (libasound2-plugins) connects to PulseAudio or
pipewire-pulse and reads PULSE_SINK / PULSE_SOURCE when a stream opens, so each stream is
opened with its own value under a lock. Timing: PortAudio stamps every buffer with the host
clock (outputBufferDacTime / inputBufferAdcTime); a robust statistic over the buffers of
"stamp minus position" gives when sample 0 left each output and entered the input
(`_origin`). The audio callbacks only copy and enqueue; everything else happens in the
calling thread. sounddevice is imported lazily: without libportaudio this module imports
and every call raises AudioError.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from core.probe.sinks import (
    PULSE_DEVICE,
    ROUTING_LOCK,
    AudioDevice,
    AudioError,
    check_present,
    list_devices,
    list_sinks,
    list_sources,
    load_sounddevice,
    open_stream,
    resolve_device,
    sink_for_address,
)

#: An input or output that delivers nothing for this long has vanished (buffers: 5-25 ms).
STALL_S: Final = 1.5
#: Extra wall time on top of the probe's own length before giving up (server start-up).
TIMEOUT_SLACK_S: Final = 5.0
#: Poll period of the consumer loop (the queues are drained every tick).
TICK_S: Final = 0.01
#: Quantile of the per-buffer estimates of a stream's sample-0 time (see `_origin`).
ORIGIN_QUANTILE: Final = 0.75
#: A sample at or above this magnitude counts as clipped (float full scale is 1.0).
CLIP_LEVEL: Final = 0.999
#: Below this peak (-60 dBFS) a recording is treated as silence.
SILENCE_PEAK: Final = 1e-3


@dataclass(frozen=True, slots=True, eq=False)
class Output:
    """One speaker's part of a probe: `signal` (mono float) on audio-server `sink` (routed
    with PULSE_SINK) through PortAudio `device` (default: `pulse` when sink is set)."""

    sink: str | None
    device: int | str | None
    signal: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class Capture:
    """What one probe recorded. `emission_s[i]`: when output i's sample 0 left the host, in
    seconds from recording sample 0, so latency = arrival - emission."""

    rate: int
    recording: np.ndarray
    emission_s: tuple[float, ...]
    warnings: tuple[str, ...]
    clipped_fraction: float


class _InputTap:
    """Input callback: copies each buffer and its ADC stamp into a queue, nothing else."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[tuple[np.ndarray, float, float, Any]] = queue.SimpleQueue()

    def __call__(self, indata: np.ndarray, frames: int, stamp: Any, status: Any) -> None:
        self.events.put((indata.copy(), stamp.inputBufferAdcTime, stamp.currentTime, status))


class _OutputFeed:
    """Output callback: copies the next slice of the signal (then silence) and enqueues the
    slice's position and DAC stamp, nothing else."""

    def __init__(self, signal: np.ndarray) -> None:
        self.signal = signal  # float32, shape (n, 1): broadcasts to any channel count
        self.position = 0
        self.prefill = 0  # frames PortAudio writes before the stream runs (its latency)
        self.events: queue.SimpleQueue[tuple[int, float, float, Any]] = queue.SimpleQueue()

    def __call__(self, outdata: np.ndarray, frames: int, stamp: Any, status: Any) -> None:
        start = self.position
        chunk = self.signal[start : start + frames]
        outdata[: len(chunk)] = chunk
        outdata[len(chunk) :] = 0.0
        self.position = start + frames
        self.events.put((start, stamp.outputBufferDacTime, stamp.currentTime, status))


def _as_column(signal: np.ndarray, index: int) -> np.ndarray:
    samples = np.asarray(signal, dtype=np.float64)
    if samples.ndim != 1 or samples.size == 0 or not np.all(np.isfinite(samples)):
        raise AudioError(f"output {index + 1}: the signal must be a non-empty mono float array")
    return np.ascontiguousarray(samples.astype(np.float32).reshape(-1, 1))


#: One buffer's timing: (host stamp, callback time, stream position, xruns before it).
Stamp = tuple[float, float, int, int]


def _origin(
    stamps: Sequence[Stamp], rate: int, played: int = 0, prefill: int = 0
) -> tuple[float, bool]:
    """Host-clock time of sample 0: the upper quartile of stamp - position/rate.

    Buffers count only within one xrun epoch (an xrun flushes what was queued): for an
    output, the epoch of the last buffer that carried signal (its first `played` samples);
    for the input, the first. An output's first `prefill` frames are written back to back
    before the stream runs and were measured 5-10 ms off, so they count only when nothing
    else does. The upper quartile, not the median: a callback that PortAudio splits from a
    host period reuses a stale stamp, which only makes the estimate early (measured: two
    modes 2.5-8.5 ms apart, the upper one right). Falls back to the callback's current time
    when the host API gives no stamps (then False)."""
    if not stamps:
        raise AudioError("a stream delivered no audio at all: is the device working?")
    epoch = max((x for _, _, p, x in stamps if p < played), default=0)
    clean = [s for s in stamps if s[3] == epoch] or list(stamps)
    clean = [s for s in clean if s[2] > prefill] or clean
    stamped = [s - p / rate for s, _, p, _ in clean if s > 0.0]
    if stamped:
        return float(np.quantile(stamped, ORIGIN_QUANTILE)), True
    return float(np.quantile([c - p / rate for _, c, p, _ in clean], ORIGIN_QUANTILE)), False


def _flagged(status: Any, name: str) -> bool:
    return bool(status) and bool(getattr(status, name, False))


class _Session:
    """The consumer side of one probe: runs the open streams, drains their queues in this
    thread and keeps the bookkeeping; raises AudioError on a stall or the deadline."""

    def __init__(
        self, rate: int, signals: Sequence[np.ndarray], labels: Sequence[str], deadline: float
    ) -> None:
        self.rate = rate
        self.labels = labels
        self.deadline = deadline
        self.tap = _InputTap()
        self.feeds = [_OutputFeed(s) for s in signals]
        self.chunks: list[np.ndarray] = []
        self.in_frames = 0
        self.in_stamps: list[Stamp] = []
        self.out_stamps: list[list[Stamp]] = [[] for _ in signals]
        self.overflows = 0
        self.underflows = [0 for _ in signals]
        self.last_in = time.monotonic()
        self.last_out = [self.last_in for _ in signals]

    def drain(self) -> None:
        now = time.monotonic()
        while not self.tap.events.empty():
            data, adc, current, status = self.tap.events.get_nowait()
            self.overflows += _flagged(status, "input_overflow")
            self.in_stamps.append((adc, current, self.in_frames, self.overflows))
            self.chunks.append(data[:, 0])
            self.in_frames += len(data)
            self.last_in = now
        for i, feed in enumerate(self.feeds):
            while not feed.events.empty():
                start, dac, current, status = feed.events.get_nowait()
                self.underflows[i] += _flagged(status, "output_underflow")
                self.out_stamps[i].append((dac, current, start, self.underflows[i]))
                self.last_out[i] = now

    def run(self, inp: Any, outs: Sequence[Any], pre_roll_s: float, tail_s: float) -> None:
        """Pre-roll, start every output at once, record until all ended plus the tail."""
        inp.start()
        while self.in_frames < pre_roll_s * self.rate:
            self.tick(inp, ())
        for stream in outs:
            stream.start()
        self.last_out = [time.monotonic() for _ in outs]
        while not all(
            f.position >= len(f.signal) and s
            for f, s in zip(self.feeds, self.out_stamps, strict=True)
        ):
            self.tick(inp, outs)
        in_zero, _ = _origin(self.in_stamps, self.rate)
        end = max(
            _origin(s, self.rate, len(f.signal), f.prefill)[0] + len(f.signal) / self.rate
            for f, s in zip(self.feeds, self.out_stamps, strict=True)
        )
        while self.in_frames < (end + tail_s - in_zero) * self.rate:
            self.tick(inp, ())

    def tick(self, inp: Any, outs: Sequence[Any]) -> None:
        time.sleep(TICK_S)
        self.drain()
        now = time.monotonic()
        if now > self.deadline:
            raise AudioError(
                f"the probe timed out after recording {self.in_frames / self.rate:.2f} s: "
                "the audio server or a device stopped responding"
            )
        if not inp.active or now - self.last_in > STALL_S:
            raise AudioError(
                f"the input device vanished during the probe (no audio for "
                f"{now - self.last_in:.1f} s): reconnect the microphone and probe again"
            )
        for stream, label, feed, last in zip(
            outs, self.labels, self.feeds, self.last_out, strict=False
        ):
            if feed.position < len(feed.signal) and (not stream.active or now - last > STALL_S):
                raise AudioError(
                    f"the output {label} vanished during the probe: is the speaker connected?"
                )


def _close_all(streams: Sequence[Any]) -> None:
    for stream in streams:
        for step in (stream.abort, stream.close):
            try:
                step()
            except Exception:
                pass


def play_and_record(
    outputs: Sequence[Output],
    *,
    rate: int = 48_000,
    input_device: int | str | None = None,
    source: str | None = None,
    pre_roll_s: float = 0.2,
    tail_s: float = 0.5,
    timeout_s: float | None = None,
) -> Capture:
    """Play every output on its own sink at once while recording one input (BLOCKING).

    `source` records that audio-server source through the `pulse` device (PULSE_SOURCE).
    `timeout_s` defaults to the probe's length plus TIMEOUT_SLACK_S. Every stream is closed
    before returning, also on error.
    """
    if not outputs:
        raise AudioError("nothing to play: a probe needs at least one speaker")
    signals = [_as_column(o.signal, i) for i, o in enumerate(outputs)]
    sd = load_sounddevice()
    sinks = [o.sink for o in outputs if o.sink is not None]
    if sinks:
        check_present(sinks, list_sinks(), "sink")
    if source is not None:
        check_present([source], list_sources(), "source")
    if input_device is None and source is not None:
        input_device = PULSE_DEVICE
    in_device = resolve_device(input_device, "input")
    out_devices = [
        resolve_device(PULSE_DEVICE if o.device is None and o.sink else o.device, "output")
        for o in outputs
    ]
    labels = [o.sink or f"device {d!r}" for o, d in zip(outputs, out_devices, strict=True)]
    longest = max(len(s) for s in signals) / rate
    if timeout_s is None:
        timeout_s = pre_roll_s + longest + tail_s + TIMEOUT_SLACK_S
    session = _Session(rate, signals, labels, time.monotonic() + timeout_s)
    streams: list[Any] = []
    try:
        with ROUTING_LOCK:
            inp = open_stream(sd, "input", in_device, rate, source, session.tap)
            streams.append(inp)
            for output, device, feed in zip(outputs, out_devices, session.feeds, strict=True):
                streams.append(open_stream(sd, "output", device, rate, output.sink, feed))
                feed.prefill = round(float(streams[-1].latency) * rate)
        session.run(inp, streams[1:], pre_roll_s, tail_s)
    except sd.PortAudioError as exc:
        raise AudioError(f"audio stream failed ({exc}): is the device still there?") from exc
    finally:
        _close_all(streams)
    session.drain()
    # The server moves the streams of a sink or source that goes away to another one, so
    # the streams run on: only asking the server again shows that the probe went astray.
    if sinks:
        check_present(sinks, list_sinks(), "sink", during=True)
    if source is not None:
        check_present([source], list_sources(), "source", during=True)
    return _capture(session, labels)


def _capture(session: _Session, labels: Sequence[str]) -> Capture:
    rate = session.rate
    warnings: list[str] = []
    if session.chunks:
        recording = np.concatenate(session.chunks).astype(np.float64)
    else:
        recording = np.zeros(0, dtype=np.float64)
    in_zero, in_stamped = _origin(session.in_stamps, rate)
    emission: list[float] = []
    stamped = in_stamped
    for stamps, feed in zip(session.out_stamps, session.feeds, strict=True):
        zero, ok = _origin(stamps, rate, len(feed.signal), feed.prefill)
        emission.append(zero - in_zero)
        stamped = stamped and ok
    if not stamped:
        warnings.append(
            "the audio host gives no buffer timestamps: emission times come from callback "
            "times and may be off by a buffer"
        )
    if session.overflows:
        warnings.append(f"the input overflowed {session.overflows} times: audio was lost")
    for label, feed, stamps in zip(labels, session.feeds, session.out_stamps, strict=True):
        count = max((x for _, _, p, x in stamps if p <= len(feed.signal)), default=0)
        if count:
            warnings.append(
                f"the output {label} underflowed {count} times while playing the probe (the "
                "machine is too busy?): its latency may be off by a few ms"
            )
    peak = float(np.max(np.abs(recording))) if recording.size else 0.0
    clipped = float(np.mean(np.abs(recording) >= CLIP_LEVEL)) if recording.size else 0.0
    if clipped > 0.0:
        warnings.append(
            f"the recording clipped ({clipped:.2%} of samples at full scale): "
            "lower the speaker volume or the input gain"
        )
    if peak < SILENCE_PEAK:
        warnings.append(
            "the recording is silent (peak below -60 dBFS): is the microphone muted, "
            "or is it the wrong input?"
        )
    return Capture(rate, recording, tuple(emission), tuple(warnings), clipped)


__all__ = [
    "AudioDevice",
    "AudioError",
    "Capture",
    "Output",
    "list_devices",
    "list_sinks",
    "list_sources",
    "play_and_record",
    "resolve_device",
    "sink_for_address",
]
