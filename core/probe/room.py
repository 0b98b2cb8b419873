"""A simulated room: speakers with their own latency and clock skew, a direct path, discrete
reflections (which may be louder than the direct path), a diffuse tail, noise and music.

It produces recordings with known truth for the tests and benchmarks, and the demo's probe
"microphone". Fractional delays and clock skew use Kaiser-windowed sinc interpolation, so the
truth is exact to far below a sample. Levels: `noise_snr_db` and `music_db` are relative to
the mean power of one present speaker's direct sound at the microphone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.fft as sfft
import scipy.special as sspec

from core.probe.signals import ProbeSet

#: Half-width (taps each side) and Kaiser beta of the interpolation kernel: about -80 dB
#: aliasing/ripple up to 0.4 x rate, far below the noise any test or demo adds.
SINC_HALF: Final = 32
KAISER_BETA: Final = 8.0
REVERBS: Final = ("none", "light", "heavy", "louder-reflections")
NOISE_COLORS: Final = ("white", "pink", "brown")
MUSIC_KINDS: Final = ("tonal", "percussive", "speech")


@dataclass(frozen=True, slots=True)
class SpeakerPath:
    """How one speaker reaches the microphone. `delay_s` is when its sample 0 arrives by the
    direct path (the truth); reflections are (extra delay s after the direct path, gain)."""

    delay_s: float
    gain: float
    reflections: tuple[tuple[float, float], ...] = ()
    skew_ppm: float = 0.0  # > 0: the speaker's clock runs fast (it plays the probe shorter)
    present: bool = True


@dataclass(frozen=True, slots=True)
class Room:
    """A whole scene: every speaker's paths, a diffuse tail, noise and background music."""

    paths: tuple[SpeakerPath, ...]
    noise_snr_db: float | None
    music_db: float | None
    diffuse_tail_s: float = 0.0  # RT60 of the diffuse tail (0 = none)
    duration_s: float = 3.0
    diffuse_db: float = -10.0  # tail energy relative to the direct path's energy
    noise_color: str = "white"
    music_kind: str = "tonal"


#: Fractional positions tabulated for the interpolation kernel (interpolated between rows).
TABLE_STEPS: Final = 1024


@functools.cache
def _table() -> np.ndarray:
    """Kernel weights for TABLE_STEPS + 1 fractional positions in [0, 1], one row each."""
    offsets = np.arange(-SINC_HALF + 1, SINC_HALF + 1)
    frac = np.linspace(0.0, 1.0, TABLE_STEPS + 1)
    x = offsets[np.newaxis, :] - frac[:, np.newaxis]
    window = sspec.i0(KAISER_BETA * np.sqrt(np.clip(1 - (x / SINC_HALF) ** 2, 0, 1)))
    return np.asarray(np.sinc(x) * window / sspec.i0(KAISER_BETA))


def _kernel(frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (-H+1..H) and windowed-sinc weights, one row per fractional position."""
    offsets = np.arange(-SINC_HALF + 1, SINC_HALF + 1)
    table = _table()
    position = np.clip(frac, 0.0, 1.0) * TABLE_STEPS
    row = np.minimum(position.astype(np.int64), TABLE_STEPS - 1)
    blend = (position - row)[:, np.newaxis]  # linear between rows: error ~1e-7, not 1e-4
    return offsets, table[row] * (1.0 - blend) + table[row + 1] * blend


def stretch(signal: np.ndarray, skew_ppm: float) -> np.ndarray:
    """The signal as played by a clock `skew_ppm` fast: out[n] = signal(n * (1 + skew))."""
    if skew_ppm == 0.0:
        return signal
    factor = 1.0 + skew_ppm * 1e-6
    count = int(np.floor((len(signal) - 1) / factor)) + 1
    pos = np.arange(count) * factor
    base = np.floor(pos).astype(np.int64)
    offsets, weights = _kernel(pos - base)
    index = base[:, np.newaxis] + offsets[np.newaxis, :]
    padded = np.concatenate([np.zeros(SINC_HALF), signal, np.zeros(SINC_HALF + 1)])
    return np.asarray(np.sum(padded[index + SINC_HALF] * weights, axis=1))


def _add_impulses(h: np.ndarray, times: np.ndarray, gains: np.ndarray) -> None:
    """Add band-limited impulses at fractional sample positions `times` into h (in place)."""
    base = np.floor(times).astype(np.int64)
    offsets, weights = _kernel(times - base)
    index = base[:, np.newaxis] + offsets[np.newaxis, :]
    keep = (index >= 0) & (index < len(h))
    np.add.at(h, index[keep], (weights * gains[:, np.newaxis])[keep])


def _colored_noise(rng: np.random.Generator, n: int, rate: int, color: str) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white":
        return white
    spectrum = sfft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / rate), 20.0)
    spectrum /= np.sqrt(freqs) if color == "pink" else freqs
    return np.asarray(sfft.irfft(spectrum, n))


def _music(rng: np.random.Generator, n: int, rate: int, kind: str) -> np.ndarray:
    """Synthetic programme of synthetic programme: chords, a drum pattern, or speech-like babble."""
    out = np.zeros(n)
    t_all = np.arange(n) / rate
    pos = 0
    while pos < n:
        span = int(rate * rng.uniform(0.12, 0.5))
        end = min(n, pos + span)
        t = t_all[: end - pos]
        if kind == "tonal":
            root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
            env = np.exp(-t / rng.uniform(0.1, 0.6))
            for step in (0, 4, 7):
                f0 = root * 2 ** (step / 12)
                for k in range(1, 6):
                    if f0 * k < 0.45 * rate:
                        out[pos:end] += (
                            env * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k
                        )
        elif kind == "percussive":
            kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t / 0.03)) * 0.03 * 30))
            out[pos:end] += 2.0 * kick * np.exp(-t / 0.12)
            hat = np.diff(rng.standard_normal(end - pos + 1)) * np.exp(-t / 0.02)
            out[pos:end] += 0.5 * hat
        else:  # speech-like: formant-coloured noise bursts with syllable-rate modulation
            burst = rng.standard_normal(end - pos)
            spec = sfft.rfft(burst)
            f = np.fft.rfftfreq(end - pos, 1.0 / rate)
            shape = np.zeros_like(f)
            for formant in rng.uniform([300, 900, 2200], [900, 2200, 3500]):
                shape += np.exp(-(((f - formant) / 150.0) ** 2))
            burst = sfft.irfft(spec * shape, end - pos)
            out[pos:end] += burst * np.sin(np.pi * t / t[-1]) ** 2 if len(t) > 1 else 0.0
        pos = end
    return out


def render(room: Room, probes: ProbeSet, rng: np.random.Generator) -> np.ndarray:
    """The mono recording the microphone makes of `room` when every probe plays at time 0."""
    rate = probes.rate
    n_out = round(room.duration_s * rate)
    n_fft = sfft.next_fast_len(n_out + probes.length + 4 * SINC_HALF, real=True)
    total = np.zeros(n_fft // 2 + 1, dtype=np.complex128)
    powers = []
    for index, path in enumerate(room.paths):
        signal = probes.signals[index]
        powers.append(path.gain**2 * float(np.mean(signal**2)))
        if not path.present:
            continue
        h = np.zeros(n_fft)
        times = [path.delay_s] + [path.delay_s + extra for extra, _ in path.reflections]
        gains = [path.gain] + [gain for _, gain in path.reflections]
        _add_impulses(h, np.asarray(times) * rate, np.asarray(gains))
        if room.diffuse_tail_s > 0:
            start = int(path.delay_s * rate) + int(0.002 * rate)
            length = max(0, min(n_out - start, int(room.diffuse_tail_s * rate)))
            if length > 0:
                decay = np.exp(-6.9 * np.arange(length) / (room.diffuse_tail_s * rate))
                tail = rng.standard_normal(length) * decay
                energy = path.gain**2 * 10 ** (room.diffuse_db / 10)
                h[start : start + length] += tail * np.sqrt(energy / np.sum(tail**2))
        emitted = stretch(signal, path.skew_ppm)
        total += sfft.rfft(emitted, n_fft) * sfft.rfft(h)
    recording = np.asarray(sfft.irfft(total, n_fft)[:n_out])
    present = [p for p, path in zip(powers, room.paths, strict=True) if path.present]
    reference = float(np.mean(present or powers or [0.0]))
    if room.noise_snr_db is not None:
        noise = _colored_noise(rng, n_out, rate, room.noise_color)
        noise *= np.sqrt(reference / 10 ** (room.noise_snr_db / 10) / np.mean(noise**2))
        recording += noise
    if room.music_db is not None:
        music = _music(rng, n_out, rate, room.music_kind)
        music *= np.sqrt(reference * 10 ** (room.music_db / 10) / max(np.mean(music**2), 1e-30))
        recording += music
    return recording


def _reflections(
    rng: np.random.Generator, count: int, delay_s: tuple[float, float], gain: tuple[float, float]
) -> list[tuple[float, float]]:
    delays = np.sort(rng.uniform(*delay_s, size=count))
    span = delay_s[1] - delay_s[0]
    out = []
    for delay in delays:
        # later reflections are weaker on average; some come back inverted
        level = rng.uniform(*gain) * (1.0 - 0.5 * (delay - delay_s[0]) / span)
        sign = -1.0 if rng.random() < 0.2 else 1.0
        out.append((float(delay), float(sign * level)))
    return out


def random_room(
    rng: np.random.Generator,
    count: int,
    *,
    snr_db: float | None,
    reverb: str,
    skew_ppm_max: float = 100.0,
    music_db: float | None = None,
    absent: int = 0,
    duration_s: float = 3.0,
    delay_range_s: tuple[float, float] = (0.02, 0.3),
    music_kind: str | None = None,
    noise_color: str | None = None,
) -> Room:
    """A random room: latencies, levels (10 dB spread), skews, reflections per `reverb` preset.

    The reflection counts, delays and levels are drawn per speaker (different geometry every
    call); `absent` speakers (chosen at random) do not play.
    """
    if reverb not in REVERBS:
        raise ValueError(f"reverb must be one of {REVERBS}, not {reverb!r}")
    missing = set(rng.choice(count, size=min(absent, count), replace=False).tolist())
    paths = []
    for index in range(count):
        refl: list[tuple[float, float]] = []
        if reverb == "light":
            refl = _reflections(rng, int(rng.integers(2, 7)), (0.001, 0.025), (0.1, 0.5))
        elif reverb in ("heavy", "louder-reflections"):
            refl = _reflections(rng, int(rng.integers(8, 26)), (0.0005, 0.06), (0.2, 0.9))
        if reverb == "louder-reflections":
            refl += _reflections(rng, int(rng.integers(1, 4)), (0.0005, 0.015), (1.2, 2.5))
            refl.sort()
        gain = float(0.05 * 10 ** rng.uniform(0, 0.5))
        paths.append(
            SpeakerPath(
                delay_s=float(rng.uniform(*delay_range_s)),
                gain=gain,
                reflections=tuple((delay, level * gain) for delay, level in refl),
                skew_ppm=float(rng.uniform(-skew_ppm_max, skew_ppm_max)),
                present=index not in missing,
            )
        )
    tail = {"none": 0.0, "light": rng.uniform(0.15, 0.35)}.get(reverb, rng.uniform(0.5, 1.2))
    return Room(
        paths=tuple(paths),
        noise_snr_db=snr_db,
        music_db=music_db,
        diffuse_tail_s=float(tail),
        duration_s=duration_s,
        diffuse_db=-10.0 if reverb == "light" else float(rng.uniform(-3.0, 3.0)),
        noise_color=noise_color or str(rng.choice(NOISE_COLORS)),
        music_kind=music_kind or str(rng.choice(MUSIC_KINDS)),
    )


#: Reference signals that are not our probes, for checking `analyze --reference REF.wav`.
FOREIGN_KINDS: Final = ("chirp", "click", "speech")


def foreign_reference(kind: str, rate: int) -> np.ndarray:
    """A reference that is not one of our probes: a 0.3 s linear chirp 200 Hz-8 kHz, a single
    click, or a 0.4 s speech-like burst (three formants, four syllables a second)."""
    if kind == "chirp":
        t = np.arange(int(0.3 * rate)) / rate
        return np.asarray(0.8 * np.sin(2 * np.pi * (200 * t + (8000 - 200) / (2 * t[-1]) * t**2)))
    if kind == "click":
        click = np.zeros(int(0.01 * rate))
        click[0] = 0.9
        return click
    if kind == "speech":
        rng = np.random.default_rng(1)
        n = int(0.4 * rate)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / rate)
        shape = sum(np.exp(-(((f - formant) / 200) ** 2)) for formant in (500, 1500, 2500)) + 0.05
        syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / rate)
        burst = np.fft.irfft(spectrum * shape, n) * syllables
        return np.asarray(0.8 * burst / np.abs(burst).max())
    raise ValueError(f"unknown reference kind {kind!r} (known: {', '.join(FOREIGN_KINDS)})")
