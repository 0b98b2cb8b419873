"""Matched filters for arrival estimation, built from any reference signal.

The filter is conj(S) / smoothed|S|^2 x Hann(band): correlating a recording with it gives the
room's impulse response from that speaker, band-limited by a Hann window, scaled so that a
unit-gain path gives a peak of 1. Whitening by the reference's own (smoothed) spectrum makes the
peak narrow for coloured references (speech, music); the Hann window keeps sidelobes near -31 dB
so a weak direct path is not confused with a sidelobe of a louder reflection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.fft as sfft

#: Smoothing width of the reference spectrum (Hz): wide enough to average out the per-bin
#: scatter of a noise-like signal, narrow enough to follow a speaker-like spectral shape.
SMOOTH_HZ: Final = 100.0
#: Band of the filter: where the reference holds all but 0.5 % of its energy at each end,
#: clamped to [150 Hz, 0.45 x rate] (room noise and music live below 150 Hz).
BAND_ENERGY_TAIL: Final = 0.005
MIN_HZ: Final = 150.0
MAX_FRACTION_OF_RATE: Final = 0.45
#: Whitening never boosts a frequency by more than 20 dB (limits noise gain in spectral holes).
MAX_BOOST: Final = 0.01
#: The recording's own spectrum weights the filter too (the matched filter in coloured noise:
#: music, babble and pink noise put most of their power where the probe has a small share of
#: its own). Measured in NOISE_BAND_HZ bands, the weight spans at most NOISE_RANGE each side of
#: its in-band median (+-20 dB: the kernel's sidelobes stay under -25 dB).
NOISE_BAND_HZ: Final = 100.0
NOISE_RANGE: Final = 10.0
#: Lags each side of lag 0 kept of the filter's response to its own reference.
KERNEL_HALF: Final = 48
#: Half the span around lag 0 over which that analytic response is computed.
KERNEL_SPAN: Final = 512
#: Room (samples) around the reference in the small FFT the filter is designed at: the
#: smoothing and band window stretch the filter's response by ~1/SMOOTH_HZ = 10 ms each side.
PAD: Final = 2048


@dataclass(frozen=True, slots=True)
class Filter:
    """The filter of one reference at one FFT size, and the facts the analysis needs."""

    index: int
    rate: int
    length: int
    n_fft: int
    spectrum: np.ndarray
    centroid: float
    rms: float
    band_hz: tuple[float, float]
    #: filters of the first and second half of the reference at `local_fft` (skew fit), with
    #: the energy centroid of each half in samples; empty for references under 50 ms
    halves: tuple[np.ndarray, ...]
    half_centroids: tuple[float, ...]
    local_fft: int
    #: the analytic response of the filter to its own reference (one path's shape in the
    #: output) over lags -KERNEL_HALF..KERNEL_HALF
    kernel: np.ndarray

    def apply(self, recording_spectrum: np.ndarray) -> np.ndarray:
        """Filter output at every lag: index k >= 0 puts the reference's sample 0 at recording
        sample k; the end of the array holds the negative lags (circular correlation)."""
        return np.asarray(sfft.irfft(recording_spectrum * self.spectrum, self.n_fft))

    def half_outputs(self, segment: np.ndarray) -> list[np.ndarray]:
        """Each half-filter's output over a short segment (lag k = segment sample k)."""
        spectrum = sfft.rfft(segment, self.local_fft)
        return [
            np.asarray(sfft.irfft(spectrum * half, self.local_fft)[: len(segment)])
            for half in self.halves
        ]


def _smoothed(power: np.ndarray, rate: int, size: int) -> np.ndarray:
    """|S|^2 averaged over SMOOTH_HZ (moving average by cumulative sums)."""
    width = max(1, round(SMOOTH_HZ / (rate / size)))
    padded = np.concatenate([np.zeros(width // 2 + 1), power, np.zeros(width)])
    sums = np.cumsum(padded)
    return np.asarray((sums[width : width + len(power)] - sums[: len(power)]) / width)


def _band(freqs: np.ndarray, power: np.ndarray, rate: int) -> tuple[float, float]:
    cumulative = np.cumsum(power)
    total = cumulative[-1] if cumulative.size else 0.0
    lo, hi = MIN_HZ, MAX_FRACTION_OF_RATE * rate
    if total > 0:
        lo = max(lo, float(freqs[np.searchsorted(cumulative, BAND_ENERGY_TAIL * total)]))
        top = min(len(freqs) - 1, int(np.searchsorted(cumulative, (1 - BAND_ENERGY_TAIL) * total)))
        hi = min(hi, float(freqs[top]))
    if hi - lo < 200.0:  # a near-pure tone: take the usable band rather than nothing
        lo, hi = MIN_HZ, MAX_FRACTION_OF_RATE * rate
    return lo, hi


def _hann(freqs: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    lo, hi = band
    inside = (freqs > lo) & (freqs < hi)
    weight = np.zeros_like(freqs)
    weight[inside] = 0.5 - 0.5 * np.cos(2 * np.pi * (freqs[inside] - lo) / (hi - lo))
    return weight


def _normalised(kernel_spectrum: np.ndarray, n_fft: int) -> float:
    """Value at lag 0 of the inverse real FFT of `kernel_spectrum` (its peak)."""
    real = np.real(kernel_spectrum)
    total = real[0] + 2 * np.sum(real[1:])
    if n_fft % 2 == 0:
        total -= real[-1]  # the Nyquist bin is not doubled
    return float(total / n_fft)


def _filter_spectrum(
    spectrum: np.ndarray,
    n_fft: int,
    weight: np.ndarray,
    power: np.ndarray,
) -> np.ndarray:
    """W conj(S) / max(P, floor), scaled so that the kernel W|S|^2/P peaks at 1 (the real
    factor first: one complex product instead of a complex division and two products)."""
    in_band = weight > 0
    floor = MAX_BOOST * float(power[in_band].max()) if np.any(in_band) else 1.0
    factor = weight / np.maximum(power, max(floor, 1e-300))
    peak = _normalised(factor * (spectrum.real**2 + spectrum.imag**2), n_fft)
    return np.asarray((factor / peak if peak > 0 else factor) * np.conj(spectrum))


def _centroid(signal: np.ndarray) -> float:
    energy = signal**2
    total = float(energy.sum())
    return float(np.sum(np.arange(len(signal)) * energy) / total) if total > 0 else 0.0


def noise_profile(recording_spectrum: np.ndarray, rate: int, n_fft: int) -> np.ndarray:
    """Power of the recording in NOISE_BAND_HZ bands from 0 Hz (for `make_filter`)."""
    per_band = max(1, round(NOISE_BAND_HZ / (rate / n_fft)))
    power = np.abs(recording_spectrum).astype(np.float64) ** 2
    starts = np.arange(0, len(power), per_band)
    return np.asarray(np.add.reduceat(power, starts) / per_band)


def _noise_weight(profile: np.ndarray, freqs: np.ndarray, band: np.ndarray) -> np.ndarray:
    """1 / the recording's power at `freqs`, limited to +-NOISE_RANGE of its in-band median."""
    centres = (np.arange(len(profile)) + 0.5) * NOISE_BAND_HZ
    power = np.interp(freqs, centres, profile)
    inside = power[band]
    if inside.size == 0 or not np.any(inside > 0):
        return np.ones_like(freqs)
    middle = float(np.median(inside))
    return np.asarray(1.0 / np.clip(power, middle / NOISE_RANGE, middle * NOISE_RANGE))


def _analytic_kernel(kernel_spectrum: np.ndarray, size: int) -> np.ndarray:
    """Lags -KERNEL_HALF..KERNEL_HALF of the analytic signal of irfft(kernel_spectrum): the
    real response by one inverse real FFT, its analytic signal over a short span around lag
    0 (the kernel has decayed by -60 dB at +-KERNEL_SPAN lags)."""
    response = sfft.irfft(kernel_spectrum, size)
    span = min(KERNEL_SPAN, size // 2)
    around = np.concatenate([response[-span:], response[:span]])
    spectrum = np.fft.fft(around)
    spectrum[1:span] *= 2.0
    spectrum[span + 1 :] = 0.0
    analytic = np.fft.ifft(spectrum)
    return np.asarray(analytic[span - KERNEL_HALF : span + KERNEL_HALF + 1])


def make_filter(
    signal: np.ndarray, rate: int, n_fft: int, index: int, profile: np.ndarray | None = None
) -> Filter:
    """The filter of `signal` (reference `index`, 1-based) for recordings FFT'd at `n_fft`;
    `profile` (from `noise_profile`) weights it against the recording's own noise."""
    length = len(signal)
    local = sfft.next_fast_len(length + 2 * PAD, real=True)
    local_freqs = np.fft.rfftfreq(local, 1.0 / rate)
    local_spectrum = sfft.rfft(signal, local)
    power = _smoothed(np.abs(local_spectrum) ** 2, rate, local)
    band = _band(local_freqs, power, rate)
    local_weight = _hann(local_freqs, band)
    if profile is not None:
        local_weight = local_weight * _noise_weight(profile, local_freqs, local_weight > 0)
    local_filter = _filter_spectrum(local_spectrum, local, local_weight, power)
    # The filter's impulse response spans lags -(length + ~20 ms) .. +20 ms: design it at the
    # small local size, then place it (negative lags at the end) in an n_fft-long array.
    response = sfft.irfft(local_filter, local)
    split = local - length - PAD // 2
    padded = np.zeros(n_fft, dtype=np.float32)  # single precision, as the recording's FFT
    padded[:split] = response[:split]
    padded[n_fft - (local - split) :] = response[split:]
    spectrum = sfft.rfft(padded)
    halves: list[np.ndarray] = []
    centroids: list[float] = []
    middle = length // 2
    if length >= rate // 20 and np.any(signal[:middle]) and np.any(signal[middle:]):
        # >= 50 ms: each half still carries a usable peak
        first = sfft.rfft(signal[:middle], local)
        for offset, half_spectrum in ((0, first), (middle, local_spectrum - first)):
            halves.append(_filter_spectrum(half_spectrum, local, local_weight, 0.5 * power))
            part = signal[:middle] if offset == 0 else signal[middle:]
            centroids.append(offset + _centroid(part))
    return Filter(
        index=index,
        rate=rate,
        length=length,
        n_fft=n_fft,
        spectrum=spectrum,
        centroid=_centroid(signal),
        rms=float(np.sqrt(np.mean(signal**2))),
        band_hz=band,
        halves=tuple(halves),
        half_centroids=tuple(centroids),
        local_fft=local,
        kernel=_analytic_kernel(local_spectrum * local_filter, local),
    )
