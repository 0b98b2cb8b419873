"""Matched filters for arrival estimation, built from any reference signal.

The filter is conj(S) / smoothed|S|^2 x Hann(band): correlating a recording with it gives the
room's impulse response from that speaker, band-limited by a Hann window, scaled so that a
unit-gain path gives a peak of 1. Whitening by the reference's own (smoothed) spectrum makes the
peak narrow for coloured references (speech, music); the Hann window keeps sidelobes near -31 dB
so a weak direct path is not confused with a sidelobe of a louder reflection.

A filter also knows its design (the response at a small FFT size), so it can be placed at
another FFT size (`at`, `place`), and its reference's spectrum over the smooth gain of its
kernel, so that a stretch of its output (a speaker's estimated impulse response) can be turned
back into that speaker's sound in the recording (`replay`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
#: A replay divides by the kernel's smooth gain (to undo the Hann band window) only down to
#: this fraction of its peak: below it (the band's outer edges, ~3 % of the filter's weight) the
#: estimate is left attenuated rather than its noise amplified.
REPLAY_FLOOR: Final = 0.03


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
    #: the design: the filter's impulse response at `local_fft` (negative lags from `split`
    #: on) and its spectrum; and the reference's spectrum there over the kernel's smooth gain
    #: (the Hann band window over the peak normalisation: what the filter leaves of a path at
    #: each frequency), which turns a stretch of filter output back into sound
    response: np.ndarray
    local_spectrum: np.ndarray
    split: int
    replayer: np.ndarray

    def apply(self, recording_spectrum: np.ndarray) -> np.ndarray:
        """Filter output at every lag: index k >= 0 puts the reference's sample 0 at recording
        sample k; the end of the array holds the negative lags (circular correlation)."""
        return np.asarray(sfft.irfft(recording_spectrum * self.spectrum, self.n_fft))

    def at(self, n_fft: int) -> Filter:
        """The same filter for recordings (or stretches of one) FFT'd at `n_fft`. Its output is
        free of circular wrap at lags B .. B + n_fft - local_fft of a stretch of n_fft samples
        (B = `lead`): those lags see the samples they need, B before to length + PAD / 2
        after."""
        if n_fft == self.local_fft:
            return replace(self, n_fft=n_fft, spectrum=self.local_spectrum)
        return replace(self, n_fft=n_fft, spectrum=place([self], n_fft)[0])

    @property
    def lead(self) -> int:
        """Samples of the recording before a lag that the filter output at that lag reads."""
        return self.split

    def half_outputs(self, segment: np.ndarray) -> np.ndarray:
        """Each half-filter's output over a short segment (lag k = segment sample k), a row
        each."""
        spectrum = sfft.rfft(segment, self.local_fft)
        outputs = sfft.irfft(spectrum * np.stack(self.halves), self.local_fft, axis=-1)
        return np.asarray(outputs[:, : len(segment)])


def _smoothed(power: np.ndarray, rate: int, size: int) -> np.ndarray:
    """|S|^2 averaged over SMOOTH_HZ along the last axis (moving average by cumulative
    sums)."""
    width = max(1, round(SMOOTH_HZ / (rate / size)))
    rows = power.shape[:-1]
    padded = np.concatenate(
        [np.zeros((*rows, width // 2 + 1)), power, np.zeros((*rows, width))], axis=-1
    )
    sums = np.cumsum(padded, axis=-1)
    count = power.shape[-1]
    return np.asarray((sums[..., width : width + count] - sums[..., :count]) / width)


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


def _normalised(kernel_spectrum: np.ndarray, n_fft: int) -> np.ndarray:
    """Value at lag 0 of the inverse real FFT of each row of `kernel_spectrum` (its peak)."""
    real = np.real(kernel_spectrum)
    total = real[..., 0] + 2 * np.sum(real[..., 1:], axis=-1)
    if n_fft % 2 == 0:
        total -= real[..., -1]  # the Nyquist bin is not doubled
    return np.asarray(total / n_fft)


def _filter_factor(
    spectrum: np.ndarray,
    n_fft: int,
    weight: np.ndarray,
    power: np.ndarray,
) -> np.ndarray:
    """W / max(P, floor) for each row, scaled so that the kernel W|S|^2/P peaks at 1: the
    filter is this real factor times conj(S) (one complex product instead of a complex
    division and two)."""
    in_band = weight > 0
    floor = np.where(
        np.any(in_band, axis=-1), MAX_BOOST * np.max(np.where(in_band, power, 0.0), axis=-1), 1.0
    )
    factor = weight / np.maximum(power, np.maximum(floor, 1e-300)[..., np.newaxis])
    peak = _normalised(factor * (spectrum.real**2 + spectrum.imag**2), n_fft)
    return np.asarray(factor / np.where(peak > 0, peak, 1.0)[..., np.newaxis])


def place(filters: list[Filter], n_fft: int) -> np.ndarray:
    """The spectra at `n_fft` of filters designed at a smaller size, one row each (batched:
    one FFT over all rows runs about twice as fast as one per row): each response's first
    `split` samples (lags >= 0) at the start of its row, the rest (negative lags) at its end."""
    padded = np.zeros((len(filters), n_fft), dtype=np.float32)  # single precision, as the
    for row, filt in zip(padded, filters, strict=True):  # recording's FFT
        row[: filt.split] = filt.response[: filt.split]
        row[n_fft - (len(filt.response) - filt.split) :] = filt.response[filt.split :]
    return np.asarray(sfft.rfft(padded, axis=-1))


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


def _analytic_kernels(kernel_spectra: np.ndarray, size: int) -> np.ndarray:
    """Lags -KERNEL_HALF..KERNEL_HALF of the analytic signal of irfft(kernel_spectrum), one
    row each: the real response by one inverse real FFT, its analytic signal over a short span
    around lag 0 (the kernel has decayed by -60 dB at +-KERNEL_SPAN lags)."""
    response = sfft.irfft(kernel_spectra, size, axis=-1)
    span = min(KERNEL_SPAN, size // 2)
    around = np.concatenate([response[..., -span:], response[..., :span]], axis=-1)
    spectrum = np.fft.fft(around, axis=-1)
    spectrum[..., 1:span] *= 2.0
    spectrum[..., span + 1 :] = 0.0
    analytic = np.fft.ifft(spectrum, axis=-1)
    return np.asarray(analytic[..., span - KERNEL_HALF : span + KERNEL_HALF + 1])


def make_filters(signals: np.ndarray, rate: int, profile: np.ndarray | None = None) -> list[Filter]:
    """The designs of every reference (rows of `signals`, all of one length; row k is
    reference k + 1), to be placed at a recording's FFT size with `at` or `place`; `profile`
    (from `noise_profile`) weights them against the recording's own noise. The FFTs run over
    all rows at once."""
    length = signals.shape[1]
    local = sfft.next_fast_len(length + 2 * PAD, real=True)
    local_freqs = np.fft.rfftfreq(local, 1.0 / rate)
    spectra = sfft.rfft(signals, local, axis=-1)
    power = _smoothed(spectra.real**2 + spectra.imag**2, rate, local)
    bands = [_band(local_freqs, row, rate) for row in power]
    weight = np.stack([_hann(local_freqs, band) for band in bands])
    if profile is not None:
        weight = np.stack([w * _noise_weight(profile, local_freqs, w > 0) for w in weight])
    factor = _filter_factor(spectra, local, weight, power)
    filters = factor * np.conj(spectra)
    # The filter's impulse response spans lags -(length + ~20 ms) .. +20 ms: design it at the
    # small local size, then place it (negative lags at the end) in an n_fft-long array.
    responses = sfft.irfft(filters, local, axis=-1).astype(np.float32)
    split = local - length - PAD // 2
    kernels = _analytic_kernels(spectra * filters, local)
    middle = length // 2
    # >= 50 ms: each half still carries a usable peak
    halved = length >= rate // 20
    if halved:
        firsts = sfft.rfft(signals[:, :middle], local, axis=-1)
        half_filters = [
            _filter_factor(part, local, weight, 0.5 * power) * np.conj(part)
            for part in (firsts, spectra - firsts)
        ]
    replayers = _replayers(spectra, factor * power)
    out = []
    for row, signal in enumerate(signals):
        halves: tuple[np.ndarray, ...] = ()
        centroids: tuple[float, ...] = ()
        if halved and np.any(signal[:middle]) and np.any(signal[middle:]):
            halves = (half_filters[0][row], half_filters[1][row])
            centroids = (_centroid(signal[:middle]), middle + _centroid(signal[middle:]))
        out.append(
            Filter(
                index=row + 1,
                rate=rate,
                length=length,
                n_fft=0,
                spectrum=np.zeros(0, np.complex64),
                centroid=_centroid(signal),
                rms=float(np.sqrt(np.mean(signal**2))),
                band_hz=bands[row],
                halves=halves,
                half_centroids=centroids,
                local_fft=local,
                kernel=kernels[row],
                response=responses[row],
                local_spectrum=filters[row].astype(np.complex64),
                split=split,
                replayer=replayers[row],
            )
        )
    return out


def replay(filters: list[Filter], windows: np.ndarray) -> list[np.ndarray]:
    """Each filter's reference as the recording holds it, played through the room whose
    impulse response (that filter's output over a stretch of lags, noise taken out) is its row
    of `windows`: sample 0 of each result is its window's first lag. All filters share one
    design size; a window may be up to local_fft - length + 1 lags long (the linear
    convolution fits that size). The FFTs run over all rows at once."""
    local, length = filters[0].local_fft, filters[0].length
    if windows.shape[-1] > local - length + 1:
        raise ValueError(f"windows of {windows.shape[-1]} lags do not fit the design")
    spectra = sfft.rfft(windows.astype(np.float32), local, axis=-1)
    spectra *= np.stack([filt.replayer for filt in filters])
    sounds = sfft.irfft(spectra, local, axis=-1)
    return list(sounds[:, : windows.shape[-1] + length - 1])


def make_filter(
    signal: np.ndarray,
    rate: int,
    n_fft: int | None,
    index: int,
    profile: np.ndarray | None = None,
) -> Filter:
    """The filter of `signal` (reference `index`, 1-based) for recordings FFT'd at `n_fft`
    (None: the design only, to be placed with `at`); see `make_filters`."""
    design = replace(make_filters(signal[np.newaxis, :], rate, profile)[0], index=index)
    return design.at(n_fft) if n_fft else design


def _replayers(spectra: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """S / the kernel's smooth gain, row by row (|S|^2 smoothed is P, so the kernel W|S|^2/P
    averages to W P / max(P, floor) = factor x P over 100 Hz), the gain floored at
    REPLAY_FLOOR of its peak."""
    floor = np.maximum(REPLAY_FLOOR * np.max(gains, axis=-1, keepdims=True), 1e-300)
    return np.asarray((spectra / np.maximum(gains, floor)).astype(np.complex64))
