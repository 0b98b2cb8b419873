"""Recordings with known truth, written the way an outside tester would: not with the product's
room model (core/probe/room.py) but with plain numpy of their own, over the whole ranges of
issue 11 §4.

Arrival scenes: 1-8 speakers at -10..0 dB relative, each with its own latency, clock skew
(±60 ppm), discrete reflections (in half the scenes one or two louder than the direct path) and a
diffuse tail; pink noise, babble or music (or music plus pink noise) at 0-40 dB SNR; the whole
recording scaled to a peak of -36..-6 dBFS and rounded to 16 bits. Gap scenes are in
tests/probe/gap_scenes.py.

Every draw comes from one seed: `fresh_seed()` picks a new one per run unless PROBE_SEED pins it,
and every assertion message prints it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from core.probe.signals import ProbeSet

RATE: Final = 48000
#: Oversampling of the probe before cubic interpolation (fractional delays and clock skew):
#: the probe's band ends at 12 kHz = 1/32 of the oversampled rate, where cubic (Catmull-Rom)
#: interpolation is accurate to about -90 dB.
OVERSAMPLE: Final = 8
NOISE_KINDS: Final = ("pink", "babble", "music", "music+pink")


def fresh_seed() -> int:
    """A new seed each run (printed with every failure), or $PROBE_SEED to repeat one."""
    pinned = os.environ.get("PROBE_SEED")
    return int(pinned) if pinned else secrets.randbelow(2**31)


# -- building blocks -------------------------------------------------------------------------
def _oversampled(signal: np.ndarray) -> np.ndarray:
    size = len(signal) + 256  # zero room so the periodic interpolation does not wrap
    spectrum = np.fft.rfft(signal, size)
    return np.fft.irfft(spectrum, size * OVERSAMPLE) * OVERSAMPLE


def _cubic(dense: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Catmull-Rom interpolation of `dense` at fractional (oversampled) positions."""
    base = np.floor(positions).astype(np.int64)
    t = positions - base
    padded = np.concatenate([np.zeros(2), dense, np.zeros(3)])
    p0, p1, p2, p3 = (padded[np.clip(base + k + 1, 0, len(padded) - 1)] for k in (-1, 0, 1, 2))
    return np.asarray(
        0.5
        * (
            2 * p1
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
        )
    )


def _place(
    out: np.ndarray, dense: np.ndarray, length: int, at: float, skew_ppm: float, gain: float
) -> None:
    """Add the signal (oversampled in `dense`, `length` samples long) to `out`, its sample 0 at
    `at` (fractional samples), played by a clock `skew_ppm` fast."""
    factor = 1.0 + skew_ppm * 1e-6
    first = int(np.ceil(at))
    count = int((length - 1) / factor) + 3
    n = np.arange(first, min(len(out), first + count))
    if n.size == 0:
        return
    source = (n - at) * factor  # position in the probe's own samples
    keep = (source >= -2) & (source <= length + 2)
    out[n[keep]] += gain * _cubic(dense, source[keep] * OVERSAMPLE)


def _spectral_noise(
    rng: np.random.Generator, n: int, shape: np.ndarray | None = None
) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    if shape is not None:
        spectrum *= shape
    return np.fft.irfft(spectrum, n)


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    return _spectral_noise(rng, n, 1 / np.sqrt(np.maximum(freqs, 20.0)))


def _formants(freqs: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    return np.asarray(sum(1 / (1 + ((freqs - c) / width) ** 2) for c in centres))


def babble(rng: np.random.Generator, n: int, talkers: int | None = None) -> np.ndarray:
    """Several talkers: voiced pulse trains (90-250 Hz, jittered) and unvoiced bursts through
    changing formants, syllables at 3-6 per second, pauses between phrases."""
    out = np.zeros(n)
    for _ in range(talkers or int(rng.integers(3, 8))):
        voice = np.zeros(n)
        pos = -int(rng.integers(0, RATE // 2))
        f0 = rng.uniform(90, 250)
        while pos < n:
            syl = int(RATE / rng.uniform(3, 6))
            end = min(n, pos + syl)
            seg = end - pos
            if end <= 0:
                pos = end
                continue
            if rng.random() < 0.15:  # a pause
                pos = end + int(rng.uniform(0.05, 0.4) * RATE)
                continue
            if rng.random() < 0.75:
                excitation = np.zeros(seg)
                periods = RATE / (f0 * rng.uniform(0.97, 1.03, size=int(seg * f0 / RATE) + 2))
                pulses = np.cumsum(periods) - periods[0]
                excitation[pulses[pulses < seg].astype(np.int64)] = 1.0
            else:
                excitation = rng.standard_normal(seg) * 0.1
            freqs = np.fft.rfftfreq(seg, 1 / RATE)
            shape = _formants(freqs, rng.uniform([250, 800, 2000], [900, 2300, 3500]), 120.0)
            shape *= 1 / (1 + freqs / 3000)
            sound = np.fft.irfft(np.fft.rfft(excitation) * shape, seg)
            shaped = sound * np.hanning(seg)
            voice[max(0, pos) : end] += shaped[max(0, -pos) :]
            pos = end
        power = float(np.mean(voice**2))
        out += voice / np.sqrt(power) * rng.uniform(0.5, 1.0) if power > 0 else 0.0
    return out


def music(rng: np.random.Generator, n: int, *, drums: bool = True) -> np.ndarray:
    """A continuous piece: sustained chords, a plucked melody with harmonics, and (optionally)
    kick, snare and hi-hat on a beat at 80-160 bpm."""
    t = np.arange(n) / RATE
    out = np.zeros(n)
    pos = 0
    while pos < n:  # chords, cross-faded so the programme never rests
        span = int(RATE * rng.uniform(0.8, 2.5))
        end = min(n, pos + span + RATE // 10)
        root = 110 * 2 ** (rng.integers(0, 12) / 12)
        env = np.hanning(end - pos) ** 0.3
        for step in (0, 3 + rng.integers(0, 2), 7):
            f = root * 2 ** (step / 12)
            for k in range(1, 5):
                out[pos:end] += (
                    env * np.sin(2 * np.pi * f * k * t[pos:end] + rng.uniform(0, 6.3)) / k
                )
        pos += span
    pos = 0
    while pos < n:  # melody
        span = int(RATE * rng.uniform(0.1, 0.5))
        end = min(n, pos + span)
        f = 220 * 2 ** (rng.integers(0, 24) / 12)
        local = t[: end - pos]
        env = np.exp(-local / rng.uniform(0.08, 0.4)) * (1 - np.exp(-local / 0.003))
        for k in range(1, 8):
            if f * k < 0.45 * RATE:
                out[pos:end] += 0.8 * env * np.sin(2 * np.pi * f * k * local) / k**1.3
        pos = end
    if drums:
        beat = RATE * 60 / rng.uniform(80, 160)
        hit = 0
        at = rng.uniform(0, beat)
        while at < n:
            start = int(at)
            length = min(n - start, RATE // 4)
            local = t[:length]
            if hit % 2 == 0:  # kick
                out[start : start + length] += (
                    3
                    * np.sin(2 * np.pi * (50 * local + 40 * (1 - np.exp(-local / 0.02))))
                    * np.exp(-local / 0.1)
                )
            else:  # snare
                out[start : start + length] += (
                    1.5 * rng.standard_normal(length) * np.exp(-local / 0.05)
                )
            hat = min(n - start, RATE // 20)
            out[start : start + hat] += (
                0.4 * np.diff(rng.standard_normal(hat + 1)) * np.exp(-local[:hat] / 0.01)
            )
            hit += 1
            at += beat / (2 if rng.random() < 0.3 else 1)
    return out


def noise_of(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-power noise of one kind (pink, babble, music, or music with pink noise 10 dB down)."""
    if kind == "pink":
        sound = pink(rng, n)
    elif kind == "babble":
        sound = babble(rng, n)
    elif kind == "music":
        sound = music(rng, n)
    elif kind == "music+pink":
        m, p = music(rng, n), pink(rng, n)
        sound = m / np.sqrt(np.mean(m**2)) + 0.3 * p / np.sqrt(np.mean(p**2))
    else:
        raise ValueError(kind)
    return np.asarray(sound / np.sqrt(np.mean(sound**2)))


def finish(recording: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale to the peak level and round to 16-bit steps, as a sound card would deliver it."""
    scaled = recording * (10 ** (peak_dbfs / 20) / np.max(np.abs(recording)))
    return np.round(scaled * 32767) / 32767


# -- arrival scenes --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Speaker:
    """Truth for one speaker: direct-path arrival (ms into the recording), level, SNR."""

    present: bool
    arrival_ms: float
    level_db: float
    snr_db: float  # its own direct sound's power over the noise's (the scene's SNR is the mix's)
    skew_ppm: float
    louder_reflection: bool


@dataclass(frozen=True, slots=True)
class Scene:
    recording: np.ndarray
    speakers: tuple[Speaker, ...]
    noise: str
    snr_db: float  # of all present speakers' direct sound together, over the noise
    peak_dbfs: float
    duration_s: float
    seed: int

    def describe(self) -> str:
        return (
            f"seed={self.seed} {len(self.speakers)} speakers, {self.noise} at "
            f"{self.snr_db:.1f} dB, "
            f"peak {self.peak_dbfs:.1f} dBFS, {self.duration_s:.0f} s"
        )


def _sound(
    rng: np.random.Generator,
    out: np.ndarray,
    probe: np.ndarray,
    arrival: float,
    skew: float,
    gain: float,
    louder: tuple[float, float] | None,
) -> None:
    """Add one speaker's sound to `out`: its direct path at `arrival` (samples), 2-12
    reflections up to 40 ms later, with `louder` one or two more of that gain range 0.5-15 ms
    after it, and a diffuse tail (RT60 0.2-1.0 s, -10..+6 dB against the direct sound)."""
    n, length = len(out), len(probe)
    dense = _oversampled(probe)
    _place(out, dense, length, arrival, skew, gain)
    reflections = int(rng.integers(2, 12))
    for _ in range(reflections):
        extra = rng.uniform(0.3e-3, 40e-3) * RATE
        level = rng.uniform(0.1, 0.7) * (1 - 0.5 * extra / (40e-3 * RATE))
        _place(out, dense, length, arrival + extra, skew, gain * level * rng.choice([-1, 1]))
    if louder is not None:
        for _ in range(int(rng.integers(1, 3))):
            extra = rng.uniform(0.5e-3, 15e-3) * RATE
            _place(out, dense, length, arrival + extra, skew, gain * rng.uniform(*louder))
    rt60 = rng.uniform(0.2, 1.0)
    tail_len = int(rt60 * RATE)
    tail = rng.standard_normal(tail_len) * np.exp(-6.9 * np.arange(tail_len) / tail_len)
    tail *= gain * 10 ** (rng.uniform(-10, 6) / 20) / np.sqrt(np.sum(tail**2))
    start = int(arrival) + int(rng.uniform(2e-3, 10e-3) * RATE)
    size = length + tail_len
    played = np.fft.irfft(np.fft.rfft(probe, size) * np.fft.rfft(tail, size), size)
    played = played[: max(0, n - start)]
    out[start : start + len(played)] += played


def _mixed(
    rng: np.random.Generator,
    out: np.ndarray,
    speakers: list[Speaker],
    probes: ProbeSet,
    noise: str,
    snr_db: float,
) -> tuple[np.ndarray, tuple[Speaker, ...], float]:
    """The recording (noise at `snr_db` under the whole probe mix, scaled to a peak of
    -36..-6 dBFS, 16 bits), each speaker's own SNR, and the peak level."""
    probe_power = float(np.mean(probes.signals**2))
    # SNR of the whole probe mix (the harder reading: each speaker is below it)
    mix = sum(10 ** (s.level_db / 10) for s in speakers if s.present) or 1.0
    noise_power = probe_power * mix / 10 ** (snr_db / 10)
    background = noise_of(noise, rng, len(out)) * np.sqrt(noise_power)
    own = [replace(s, snr_db=s.level_db + snr_db - 10 * np.log10(mix)) for s in speakers]
    peak = float(rng.uniform(-36, -6))
    return finish(out + background, peak), tuple(own), peak


def arrival_scene(
    seed: int,
    probes: ProbeSet,
    *,
    duration_s: float | None = None,
    snr_db: float | None = None,
    noise: str | None = None,
    absent: int | None = None,
    louder: bool | None = None,
) -> Scene:
    """One recording of every probe of `probes` played at once (some speakers absent)."""
    rng = np.random.default_rng(seed)
    count = probes.count
    duration_s = duration_s or float(rng.choice([2.0, 3.0, 5.0, 10.0]))
    snr_db = float(rng.uniform(0, 40)) if snr_db is None else snr_db
    noise = noise or str(rng.choice(NOISE_KINDS))
    absent = int(rng.integers(0, min(2, count - 1) + 1)) if absent is None else absent
    louder = bool(rng.random() < 0.5) if louder is None else louder
    out = np.zeros(round(duration_s * RATE))
    missing = set(rng.choice(count, size=absent, replace=False).tolist()) if absent else set()
    emit_s = rng.uniform(0.05, max(0.06, duration_s - probes.duration_s - 0.45))
    speakers = []
    for index in range(count):
        level_db = float(rng.uniform(-10, 0))
        arrival = (emit_s + rng.uniform(0.0, 0.3)) * RATE
        skew = float(rng.uniform(-60, 60))
        is_louder = louder and bool(rng.random() < 0.8)
        present = index not in missing
        speakers.append(
            Speaker(present, arrival / RATE * 1000, level_db, level_db, skew, is_louder)
        )
        if present:
            gain = 10 ** (level_db / 20)
            louder_gain = (1.1, 2.5) if is_louder else None
            _sound(rng, out, probes.signals[index], arrival, skew, gain, louder_gain)
    recording, own, peak = _mixed(rng, out, speakers, probes, noise, snr_db)
    return Scene(recording, own, noise, snr_db, peak, duration_s, seed)


def crowded_scene(seed: int, probes: ProbeSet, *, duration_s: float = 3.0) -> Scene:
    """Weak speakers among loud ones: one or two at -10..-7 dB whose direct path is under a
    reflection 1.5-2.5x louder, the others at -3..0 dB (louder reflections in 4 of 5), all
    present, clock skew ±60 ppm; noise of any kind at 10-40 dB SNR of the probe mix. The
    loud speakers' sound leaks into a weak one's filter output (the probes are alike, not
    orthogonal) and buries its direct path deeper than the noise does."""
    rng = np.random.default_rng(seed)
    count = probes.count
    snr_db = float(rng.uniform(10, 40))
    noise = str(rng.choice(NOISE_KINDS))
    weak = set(rng.choice(count, size=min(count, int(rng.integers(1, 3))), replace=False).tolist())
    out = np.zeros(round(duration_s * RATE))
    emit_s = rng.uniform(0.05, max(0.06, duration_s - probes.duration_s - 0.45))
    speakers = []
    for index in range(count):
        is_weak = index in weak
        level_db = float(rng.uniform(-10, -7) if is_weak else rng.uniform(-3, 0))
        arrival = (emit_s + rng.uniform(0.0, 0.3)) * RATE
        skew = float(rng.uniform(-60, 60))
        louder = (1.5, 2.5) if is_weak else (1.1, 2.5) if rng.random() < 0.8 else None
        speakers.append(
            Speaker(True, arrival / RATE * 1000, level_db, level_db, skew, louder is not None)
        )
        gain = 10 ** (level_db / 20)
        _sound(rng, out, probes.signals[index], arrival, skew, gain, louder)
    recording, own, peak = _mixed(rng, out, speakers, probes, noise, snr_db)
    return Scene(recording, own, noise, snr_db, peak, duration_s, seed)
