"""Test signals and a plain arrival finder, independent of the DSP package (known truth)."""

from __future__ import annotations

import numpy as np

RATE = 48_000
#: Burst length: 40 ms of band-limited noise, long enough to stand out, short enough to
#: keep each probe under a second.
BURST_S = 0.040


def burst(seed: int, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    """Hann-windowed noise limited to 300 Hz … 8 kHz; a distinct one per seed."""
    n = round(BURST_S * rate)
    noise = np.random.default_rng(seed).standard_normal(n)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum[(freqs < 300) | (freqs > 8000)] = 0
    shaped = np.fft.irfft(spectrum, n) * np.hanning(n)
    return level * shaped / np.max(np.abs(shaped))


def with_lead(signal: np.ndarray, lead_s: float, rate: int = RATE) -> np.ndarray:
    """`signal` after `lead_s` of silence (sample 0 of the result = emission time)."""
    return np.concatenate([np.zeros(round(lead_s * rate)), signal])


def arrival_s(recording: np.ndarray, reference: np.ndarray, rate: int = RATE) -> float:
    """Where `reference` starts in `recording`: cross-correlation peak, parabolic sub-sample."""
    n = len(recording) + len(reference)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)))
    corr = corr[: len(recording)]
    k = int(np.argmax(np.abs(corr)))
    shift = 0.0
    if 0 < k < len(corr) - 1:
        a, b, c = np.abs(corr[k - 1 : k + 2])
        denominator = a - 2 * b + c
        shift = 0.5 * (a - c) / denominator if denominator else 0.0
    return (k + shift) / rate
