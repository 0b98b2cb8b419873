"""Coded probe signals: one distinct, band-limited noise-like burst per speaker, all played at once.

Each probe is a random-phase multisine (flat magnitude across a speech/music band, independent
random phases per speaker), so every probe correlates sharply with itself and like noise with
the others: N speakers can play together and still be told apart. The crest factor is lowered
by a few clip-and-refilter passes so the probes can run at a low, tolerable level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.probe import ProbeError
from core.probe.wavio import WavError, read_wav, write_wav

#: Probe length. 0.5 s gives a time-bandwidth product of ~5 800 (37 dB of processing gain,
#: enough at 0 dB SNR under music) while ±100 ppm of clock skew moves the ends by only ±25 µs.
DURATION_S: Final = 0.5
#: Band of the probes: small Bluetooth speakers reproduce little below 300 Hz; SBC at low
#: bitpools and laptop microphones lose much above 12 kHz.
BAND_HZ: Final = (300.0, 12000.0)
#: Raised-cosine band edges, as a fraction of each edge frequency (soft edges = low sidelobes).
EDGE_FRACTION: Final = 0.25
#: Raised-cosine fade in/out so the burst starts and stops without a click.
FADE_S: Final = 0.005
#: Clip-and-refilter passes and the clip level (x RMS) used to lower the crest factor.
CREST_PASSES: Final = 8
CREST_CLIP_RMS: Final = 2.2
#: Peak level of the written probes (leaves headroom for the speakers' own processing).
PEAK: Final = 0.9
#: Default seed of the phase patterns (any fixed number: the probes must be reproducible).
DEFAULT_SEED: Final = 20260611
_PROBE_NAME: Final = re.compile(r"^probe_(\d+)\.wav$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ProbeSet:
    """Reference signals, one row per speaker; sample 0 of each row is its emission time."""

    rate: int
    signals: np.ndarray
    design: dict[str, Any]

    @property
    def length(self) -> int:
        return int(self.signals.shape[1])

    @property
    def duration_s(self) -> float:
        return self.length / self.rate

    @property
    def count(self) -> int:
        return int(self.signals.shape[0])


def band_mask(freqs: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """A flat band with raised-cosine edges (EDGE_FRACTION of each edge frequency wide)."""
    lo, hi = band
    lo_w, hi_w = lo * EDGE_FRACTION, hi * EDGE_FRACTION
    mask = np.zeros_like(freqs)
    rise = (freqs > lo - lo_w) & (freqs < lo + lo_w)
    mask[rise] = 0.5 - 0.5 * np.cos(np.pi * (freqs[rise] - (lo - lo_w)) / (2 * lo_w))
    mask[(freqs >= lo + lo_w) & (freqs <= hi - hi_w)] = 1.0
    fall = (freqs > hi - hi_w) & (freqs < hi + hi_w)
    mask[fall] = 0.5 + 0.5 * np.cos(np.pi * (freqs[fall] - (hi - hi_w)) / (2 * hi_w))
    return mask


def _one_probe(rng: np.random.Generator, length: int, mask: np.ndarray, fade: int) -> np.ndarray:
    phases = np.exp(2j * np.pi * rng.random(mask.size))
    signal = np.fft.irfft(mask * phases, length)
    for _ in range(CREST_PASSES):
        limit = CREST_CLIP_RMS * float(np.sqrt(np.mean(signal**2)))
        clipped = np.clip(signal, -limit, limit)
        spectrum = np.fft.rfft(clipped)
        magnitude = np.maximum(np.abs(spectrum), 1e-12)
        signal = np.fft.irfft(mask * spectrum / magnitude, length)  # keep phases, restore band
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    return signal


def design_probes(
    count: int, rate: int = 48000, *, seed: int = DEFAULT_SEED, duration_s: float | None = None
) -> ProbeSet:
    """`count` distinct probes at `rate` (deterministic for a given seed and duration).

    `duration_s` defaults to DURATION_S. Longer is not better: a speaker clock off by 100 ppm
    smears a 1 s probe by ±50 µs, which decorrelates its top octave.
    """
    if count < 1:
        raise ProbeError(f"cannot design {count} probes: ask for at least one speaker")
    if rate < 2 * BAND_HZ[0] * 4:
        raise ProbeError(f"sample rate {rate} Hz is too low for probes; use 16000 Hz or more")
    if duration_s is None:
        duration_s = DURATION_S
    if not 0.05 <= duration_s <= 10.0:
        raise ProbeError(f"probe duration {duration_s} s is out of range; use 0.05 to 10 s")
    length = round(duration_s * rate)
    band = (BAND_HZ[0], min(BAND_HZ[1], 0.4 * rate))
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    mask = band_mask(freqs, band)
    rng = np.random.default_rng(seed)
    fade = round(FADE_S * rate)
    signals = np.stack([_one_probe(rng, length, mask, fade) for _ in range(count)])
    signals *= PEAK / float(np.max(np.abs(signals)))
    rms = np.sqrt(np.mean(signals**2, axis=1))
    design = {
        "kind": "random-phase multisine, crest-factor reduced",
        "band_hz": [band[0], band[1]],
        "duration_s": length / rate,
        "seed": seed,
        "fade_ms": FADE_S * 1000.0,
        "peak": PEAK,
        "crest_factor_db": round(float(20 * np.log10(PEAK / np.mean(rms))), 2),
    }
    return ProbeSet(rate=rate, signals=signals, design=design)


def write_probe_dir(probes: ProbeSet, out: Path) -> list[Path]:
    """DIR/probe_01.wav .. probe_NN.wav (mono float32, equal length) and DIR/probe.json.

    Every file-system failure is a `WavError` naming the path.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WavError(
            f"{out}: cannot create the folder ({exc.strerror}); check the path"
        ) from None
    paths = []
    for index, signal in enumerate(probes.signals, start=1):
        path = out / f"probe_{index:02d}.wav"
        write_wav(path, signal, probes.rate)
        paths.append(path)
    meta = {
        "rate": probes.rate,
        "length": probes.length,
        "count": probes.count,
        "files": [p.name for p in paths],
        "design": probes.design,
    }
    meta_path = out / "probe.json"
    try:
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    except OSError as exc:
        raise WavError(
            f"{meta_path}: cannot be written ({exc.strerror}); check the folder"
        ) from None
    return [*paths, meta_path]


def _mono(samples: np.ndarray) -> np.ndarray:
    return samples if samples.ndim == 1 else np.asarray(samples.mean(axis=1), dtype=np.float64)


def load_reference(path: Path) -> ProbeSet:
    """A probe folder (probe_NN.wav files of one rate, padded to equal length) or one WAV file.

    Stereo references are averaged to mono. Raises `WavError` / `ProbeError` with what to do.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(
            (int(m.group(1)), p)
            for p in path.iterdir()
            if (m := _PROBE_NAME.match(p.name)) is not None
        )
        if not files:
            raise ProbeError(
                f"{path}: no probe_NN.wav files; write them with `probe-signal --out {path}`"
            )
        waves = [read_wav(p) for _, p in files]
        rates = {w.rate for w in waves}
        if len(rates) != 1:
            raise ProbeError(f"{path}: probe files have different rates {sorted(rates)}")
        length = max(len(w.samples) for w in waves)
        if length == 0:
            raise ProbeError(f"{path}: the probe files are empty; write them again")
        signals = np.zeros((len(waves), length))
        for row, wav in enumerate(waves):
            mono = _mono(wav.samples)
            signals[row, : len(mono)] = mono
        design: dict[str, Any] = {"source": str(path), "files": [p.name for _, p in files]}
        meta = path / "probe.json"
        if meta.is_file():
            try:
                design |= dict(json.loads(meta.read_text()).get("design", {}))
            except (OSError, ValueError, AttributeError):
                pass  # the WAV files are the reference; the JSON is only a description
        return ProbeSet(rate=waves[0].rate, signals=signals, design=design)
    if not path.exists():
        raise WavError(f"{path.name}: no such file or folder; give a probe folder or a WAV file")
    wav = read_wav(path)
    mono = _mono(wav.samples)
    if not np.any(mono):
        raise ProbeError(f"{path.name}: the reference is silent; give the signal that was played")
    return ProbeSet(rate=wav.rate, signals=mono[np.newaxis, :].copy(), design={"source": str(path)})
