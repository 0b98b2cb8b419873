"""Which peak before the strongest one is the direct path: only one that proves it.

A reflection may be louder than the direct sound, so the direct path is looked for before the
strongest peak of a speaker's filter output. Music, babble and the other probes' leakage put
peaks there too; an earlier peak counts only if it stands out of the noise measured just
before it (robustly, so a burst of music raises the bar) and has the shape of a path of this
speaker (its analytic waveform matches the strongest path's). When none does, the strongest
path is the answer; when an earlier peak was seen but not proven, the caller says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

#: Peaks considered at all: above CANDIDATE_PNR x the noise and CANDIDATE_REL x the strongest
#: (the kernel's sidelobes are at -31 dB; other probes' leakage near -20 dB). A candidate that
#: is not proven makes the caller warn: 4.5 sigma keeps the close calls in sight (~2-3 % of
#: speakers in the bench's scenes are warned about).
CANDIDATE_PNR: Final = 4.5
CANDIDATE_REL: Final = 0.1
#: A candidate is proven above PROOF_PNR x the largest of the recording's noise level, the ones
#: measured over each span of PROOF_NOISE_S before it (the long span averages, the short one
#: sees a burst of music whose leakage starts just before the candidate; 5 ms holds ~120
#: independent values: its RMS is good to ~7 %) and the one over AFTER_S after it. The largest
#: Rayleigh noise peak among the ~600 independent lags of the 50 ms search stays under 5.5 x
#: sigma with p = 0.02 % (5.0 let one leakage peak through in 754 speakers: 35 ms early).
PROOF_PNR: Final = 5.5
PROOF_NOISE_S: Final = (0.02, 0.005)
#: ...and when its analytic waveform over the SHAPE_S up to its peak matches one path of this
#: probe (the kernel, or the strongest path) to at least SHAPE_MIN (normalised, any phase:
#: reflections may be inverted). Measured: a lone path matches to > 0.9 at 6 sigma; peaks of
#: babble match ~0.5, of other probes' leakage < 0.8 in ~70 %, of music < 0.8 in ~40 %.
SHAPE_S: Final = 0.0003
SHAPE_MIN: Final = 0.8
#: The noise level is the larger of the MAD and the RMS: music's bursts are heavy-tailed, and
#: the MAD alone would not see them.
_MAD_TO_SIGMA: Final = 1.0 / 0.6745
#: ...and the MAD over AFTER_S after it, left out the lags over the candidate threshold (this
#: speaker's early reflections; a direct path 1 ms before a reflection 3x louder is common).
AFTER_S: Final = 0.005
#: Lags kept clear before a candidate when measuring its noise (its own main lobe).
GUARD_S: Final = 0.0005


@dataclass(frozen=True, slots=True)
class DirectPick:
    """The direct path's index in the envelope, and the earliest peak before it that could not
    be proven (ms before it), if any: the answer may then be a reflection."""

    index: int
    unproven_ms: float | None


def _candidates(envelope: np.ndarray, strongest: int, threshold: float) -> np.ndarray:
    """Local maxima above `threshold` before `strongest`, earliest first."""
    part = envelope[:strongest]
    if part.size < 3:
        return np.zeros(0, dtype=np.int64)
    is_peak = np.zeros(len(part), dtype=bool)
    is_peak[1:-1] = (part[1:-1] >= part[:-2]) & (part[1:-1] > part[2:])
    return np.flatnonzero(is_peak & (part >= threshold))


def _noise_before(corr: np.ndarray, at: int, rate: int) -> float:
    """The largest noise level over the PROOF_NOISE_S spans that end just before `at`."""
    stop = at - int(GUARD_S * rate)
    level = 0.0
    for span in PROOF_NOISE_S:
        start = max(0, stop - int(span * rate))
        values = corr[start : max(start, stop)]
        if values.size >= 16:
            mad = float(np.median(np.abs(values))) * _MAD_TO_SIGMA
            level = max(level, mad, float(np.sqrt(np.mean(values**2))))
    return level


def _noise_after(
    corr: np.ndarray,
    envelope: np.ndarray,
    lo: int,
    at: int,
    strongest: int,
    limit: float,
    rate: int,
) -> float:
    """The MAD noise level over AFTER_S after envelope index `at` (short of the strongest
    path), leaving out the lags where the envelope exceeds `limit` (this speaker's early
    reflections): leakage that rises just after a noise peak shows there."""
    guard = int(GUARD_S * rate)
    start, stop = at + guard, min(at + int(AFTER_S * rate), strongest - guard)
    if stop - start < 48:
        return 0.0
    quiet = envelope[start:stop] < limit
    values = corr[lo + start : lo + stop][quiet]
    return float(np.median(np.abs(values))) * _MAD_TO_SIGMA if values.size >= 48 else 0.0


def _match(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(abs(np.vdot(b, a)) / norm) if norm > 0 else 0.0


def _shape(analytic: np.ndarray, at: int, reference: int, half: int, kernel: np.ndarray) -> float:
    """How well the analytic waveform up to `at` (its rising side and peak: nothing of this
    speaker arrives before its direct path, while a reflection may follow within a fraction of
    a ms) matches one path of this probe: the better of the match with the kernel (the
    filter's response to its reference) and with the strongest path `reference` (which also
    carries the speaker's own response); |normalised inner product|, any phase."""
    if at - half < 0:
        return 0.0
    a = analytic[at - half : at + 1]
    middle = len(kernel) // 2
    best = _match(a, kernel[middle - half : middle + 1]) if middle >= half else 0.0
    if reference - half >= 0:
        best = max(best, _match(a, analytic[reference - half : reference + 1]))
    return best


def pick_direct(
    corr: np.ndarray,
    analytic: np.ndarray,
    lo: int,
    strongest: int,
    sigma: float,
    rate: int,
    kernel: np.ndarray,
) -> DirectPick:
    """The direct path among the peaks of `analytic` (the filter output's analytic signal over
    lags lo..) up to `strongest`; `corr` is the whole real output, `sigma` its noise level,
    `kernel` one path's analytic shape (Filter.kernel)."""
    envelope = np.abs(analytic)
    height = float(envelope[strongest])
    threshold = max(CANDIDATE_PNR * sigma, CANDIDATE_REL * height)
    half = max(2, round(SHAPE_S * rate))
    unproven: int | None = None
    pick = strongest
    for candidate in _candidates(envelope, strongest, threshold):
        peak = float(envelope[candidate])
        local = max(
            sigma,
            _noise_before(corr, lo + int(candidate), rate),
            _noise_after(corr, envelope, lo, int(candidate), strongest, threshold, rate),
        )
        proven = peak >= PROOF_PNR * local and (
            _shape(analytic, int(candidate), strongest, half, kernel) >= SHAPE_MIN
        )
        if proven:
            pick = int(candidate)
            break
        if unproven is None:
            unproven = int(candidate)
    if unproven is None:
        return DirectPick(pick, None)
    return DirectPick(pick, (pick - unproven) * 1000.0 / rate)
