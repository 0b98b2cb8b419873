"""Where each speaker's probe arrived in a recording: its DIRECT path, to a fraction of a sample.

Per reference signal: a matched filter whitened by the reference's own smoothed spectrum and
shaped by a Hann window over its band (one FFT of the recording shared by all speakers, one
inverse FFT per speaker). The output is an estimate of the room's impulse response from that
speaker, with low sidelobes whatever the reference (our probes, a chirp, a click, speech).
Detection compares its envelope peak with a robust noise level; the direct path is the EARLIEST
envelope peak that stands out of the noise and is within 20 dB of the strongest (a reflection
may be louder than the direct sound) and proves itself (core/probe/direct.py); a log-parabola
through the envelope gives the sub-sample time, and the two halves of the reference give the
speaker's clock skew, so the arrival reported is that of sample 0 even when the speaker's clock
runs ±100 ppm off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import scipy.fft as sfft

from core.probe import ProbeError
from core.probe.direct import (
    CANDIDATE_REL,
    PROOF_NOISE_S,
    SHAPE_S,
    pick_direct,
)
from core.probe.gaps import Gap, find_gaps
from core.probe.signals import ProbeSet
from core.probe.spectra import PAD, Filter, make_filters, place, replay
from core.probe.wavio import CLIP_LEVEL

#: Envelope peak / noise needed to call a speaker detected. The largest of N Rayleigh noise
#: samples stays below sqrt(2 ln(N / p)) with probability 1 - p; the threshold is that (with
#: p = DETECT_FALSE_ALARM, N = the lags searched) times DETECT_MARGIN, and never below
#: DETECT_PNR (16 dB). Measured (seeds 4000-4099, 3/6/20 s, every preset): 200 absent speakers
#: median 12.8 dB, p99 14.4, max 14.9; 400 present speakers p1 19.0 dB, min 16.8. With the
#: noise also measured over the search window (issue 11), on tests/probe/scenes.py (seeds
#: 10000-10059, 1-8 speakers): absent at most 1.4 dB under the threshold, present 1 in 100
#: within 1 dB of it (the bench `probe-field` counts both over hundreds of scenes).
DETECT_PNR: Final = 6.3
DETECT_MARGIN: Final = 1.05
DETECT_FALSE_ALARM: Final = 0.01
#: How far before the strongest peak the direct path is looked for (a slap-back reflection
#: more than 50 ms after the direct sound is an echo of its own, not the same arrival).
FIRST_WINDOW_S: Final = 0.05
#: The noise level is measured over this span of lags before the direct-path search window:
#: noise and the other probes' leakage are there, this speaker's own reverberation is not.
NOISE_WINDOW_S: Final = 0.2
#: Fewer lags than this do not make a noise estimate (2 ms: ~25 independent values at 12 kHz).
MIN_NOISE_S: Final = 0.002
#: Lags kept clear before the strongest peak when the search window's own noise is measured.
NEAR_GUARD_S: Final = 0.003
#: The envelope of an arrival rises this long before its peak (main lobe of the kernel).
GUARD_S: Final = 0.0005
#: A second look (the other speakers' estimated sound taken out of the recording first) for a
#: speaker with an earlier peak it could not prove, or whose strongest path is under
#: DOUBT_PNR x the noise: a direct path LOUDER_MAX times weaker (8 dB; issue 11's rooms have
#: reflections up to 2.5x louder than the direct sound) would then hide under the candidates'
#: threshold, CANDIDATE_PNR x the noise.
LOUDER_MAX: Final = 2.5
DOUBT_PNR: Final = 16.0
#: A heard speaker's sound is estimated from its filter output from REPLAY_BEFORE_S before its
#: direct path on (as many lags as the filter's design holds: ~85 ms for a 0.5 s probe), each
#: lag gated against REPLAY_GATE x its noise.
REPLAY_BEFORE_S: Final = 0.002
REPLAY_GATE: Final = 3.0
#: The others are replayed loudest first until this share of their estimated energy is taken
#: out (the rest would leak into the search too little to matter).
REPLAY_SHARE: Final = 0.9
#: Lags of room before the noise spans of a second look's stretch of filter output.
RELOOK_MARGIN: Final = 64
#: Lags each side of a stretch whose analytic signal is wanted, against the FFT's edge effects.
ANALYTIC_MARGIN: Final = 256
#: Clock skew beyond this is not a clock (an error of the half fits): the skew is then ignored.
MAX_SKEW_PPM: Final = 500.0
#: Warning levels: fraction of clipped samples, and RMS below which the recording is silent.
CLIP_WARN: Final = 0.001
SILENT_DBFS: Final = -90.0
_MAD_TO_SIGMA: Final = 1.0 / 0.6745
#: Filter outputs computed at once (batched FFTs run about twice as fast as one at a time),
#: as many as fit this many bytes: 11 for 3 s at 48 kHz, one for 60 s (peak memory is about
#: four times this: the placed filters, their spectra and the products).
BATCH_BYTES: Final = 8 << 20
#: The full-length filtering runs in single precision: float32 FFTs are about twice as fast and
#: their ~1e-7 relative error is far below any recording's noise (16-bit audio: 3e-5).
FFT_DTYPE: Final = np.float32


@dataclass(frozen=True, slots=True)
class Arrival:
    """One speaker's probe in the recording.

    `arrival_ms`: when its sample 0 arrived by the direct path (ms from the recording's start).
    `snr_db`: the direct path's peak over the noise of the filtered recording (dB; detection
    needs >= 16 dB at the strongest peak). For an undetected speaker: the best peak's ratio,
    which says how far from detection it was.
    `level_dbfs`: RMS level of its direct sound in the recording (dB re full scale 1.0).
    `strongest_ms`: the strongest path (a reflection when it differs from `arrival_ms`).
    `skew_ppm`: the speaker's clock offset seen during the probe (> 0 = runs fast).
    """

    index: int
    detected: bool
    arrival_ms: float | None
    snr_db: float | None
    level_dbfs: float | None
    strongest_ms: float | None = None
    skew_ppm: float | None = None
    #: an earlier peak (ms before the path of `arrival_ms`) that could not be proven the
    #: direct path: `arrival_ms` may then be a reflection's
    unproven_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything `analyze` found in one recording (DESIGN §4.4)."""

    rate: int
    duration_s: float
    arrivals: tuple[Arrival, ...]
    spread_ms: float | None
    gaps: tuple[Gap, ...]
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "rate": self.rate,
            "duration_s": round(self.duration_s, 6),
            "speakers": [
                {
                    "index": a.index,
                    "detected": a.detected,
                    "arrival_ms": r(a.arrival_ms, 4),
                    "snr_db": r(a.snr_db, 1),
                    "level_dbfs": r(a.level_dbfs, 1),
                    "strongest_ms": r(a.strongest_ms, 4),
                    "skew_ppm": r(a.skew_ppm, 1),
                }
                for a in self.arrivals
            ],
            "spread_ms": r(self.spread_ms, 4),
            "gaps": [
                {"start_ms": round(g.start_ms, 1), "duration_ms": round(g.duration_ms, 1)}
                for g in self.gaps
            ],
            "warnings": list(self.warnings),
        }


def _check(recording: np.ndarray, rate: int, reference: ProbeSet) -> np.ndarray:
    rec = np.asarray(recording, dtype=np.float64)
    if rec.ndim != 1:
        raise ProbeError(f"the recording has shape {rec.shape}: mix it to mono first")
    if rec.size == 0:
        raise ProbeError("the recording is empty: record again (is the microphone working?)")
    if rate != reference.rate:
        raise ProbeError(
            f"the recording is at {rate} Hz but the reference at {reference.rate} Hz: "
            f"record at {reference.rate} Hz (or resample the recording)"
        )
    if rec.size < reference.length:
        raise ProbeError(
            f"the recording ({rec.size / rate:.3f} s) is shorter than the probe "
            f"({reference.duration_s:.3f} s): record longer"
        )
    if not np.all(np.isfinite(rec)):
        raise ProbeError("the recording contains NaN or infinite samples: record again")
    return rec


def _envelope_peak(segment: np.ndarray, index: int) -> tuple[float, float]:
    """Sub-sample position (log-parabola) and height of the envelope maximum at `index`."""
    if 0 < index < len(segment) - 1:
        left, mid, right = np.log(np.maximum(segment[index - 1 : index + 2], 1e-300))
        denom = left - 2 * mid + right
        if denom < 0:
            offset = float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
            return index + offset, float(np.exp(mid - 0.25 * (left - right) * offset))
    return float(index), float(segment[index])


def _local_analytic(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Analytic signal of values[lo:hi], computed with a margin against edges."""
    margin = ANALYTIC_MARGIN
    a, b = max(0, lo - margin), min(len(values), hi + margin)
    return np.asarray(_analytic(values[a:b])[lo - a : hi - a])


def _local_envelope(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Envelope (|analytic signal|) of values[lo:hi]."""
    return np.asarray(np.abs(_local_analytic(values, lo, hi)))


def _analytic(values: np.ndarray) -> np.ndarray:
    """The analytic signal (Hilbert transform by FFT) along the last axis: negative
    frequencies removed, the positive ones doubled. Here rather than scipy.signal, which costs
    ~50 MB of RSS to load. The FFT runs at a fast size (zero padding): a length with a large
    prime factor (a 50 ms search window plus margins came to 7 x 419) costs four times as
    much."""
    size = values.shape[-1]
    n = sfft.next_fast_len(size)
    spectrum = sfft.fft(values, n, axis=-1)
    gain = np.zeros(n)
    gain[0] = 1.0
    if n % 2 == 0:
        gain[n // 2] = 1.0
        gain[1 : n // 2] = 2.0
    else:
        gain[1 : (n + 1) // 2] = 2.0
    return np.asarray(sfft.ifft(spectrum * gain, axis=-1)[..., :size])


def _mad_sigma(values: np.ndarray) -> float:
    return float(np.median(np.abs(values))) * _MAD_TO_SIGMA if values.size else 0.0


def _noise_sigma(corr: np.ndarray, strongest: int, count: int, rate: int) -> float:
    """Robust noise level (MAD) of the filter output over the span just before the direct-path
    search window: noise and the other probes' leakage are there, this speaker's sound is not.
    For an arrival too early for that span, the lags around it (the median shrugs off its
    peaks): far from the probes the output holds noise only, and at negative lags the
    correlation window overlaps the recording only partly; both would understate leakage."""
    span = int(NOISE_WINDOW_S * rate)
    stop = strongest - int(FIRST_WINDOW_S * rate)
    start = stop - span
    if start >= 0:
        return _mad_sigma(corr[start:stop])
    return _mad_sigma(corr[max(0, strongest - span) : min(count, strongest + span)])


def _half_delays(rec: np.ndarray, filt: Filter, direct: float) -> float | None:
    """Slope of arrival vs reference time (s/s), from the two halves of the reference."""
    reach = int(MAX_SKEW_PPM * 1e-6 * filt.length) + 4
    start = max(0, int(direct) - reach - 64)
    stop = min(len(rec), int(direct) + filt.length + reach + 64)
    segment = rec[start:stop]
    times = []
    expected = direct - start
    for corr in filt.half_outputs(segment):
        lo, hi = max(1, int(expected) - reach), min(len(corr) - 1, int(expected) + reach + 1)
        if hi - lo < 3:
            return None
        env = _local_envelope(corr, lo, hi)
        times.append(lo + _envelope_peak(env, int(np.argmax(env)))[0])
    centroid_gap = filt.half_centroids[1] - filt.half_centroids[0]
    return (times[1] - times[0]) / centroid_gap if centroid_gap > 0 else None


def detect_threshold(lags: int) -> float:
    """The envelope peak / noise ratio needed to call a speaker detected among `lags` lags."""
    return max(DETECT_PNR, DETECT_MARGIN * math.sqrt(2 * math.log(lags / DETECT_FALSE_ALARM)))


@dataclass(frozen=True, slots=True)
class _Look:
    """One look at a speaker's filter output, and what a second look would need."""

    arrival: Arrival
    #: lag of the strongest path
    strongest: int
    #: whether an earlier path may hide under the other probes' leakage: an earlier peak was
    #: not proven, or the strongest path is too close to the noise for one to be
    doubtful: bool = False
    #: the filter output over the speaker's response (from lag `start`) and its noise level
    start: int = 0
    window: np.ndarray | None = None
    sigma: float = 0.0


def _locate(
    corr: np.ndarray,
    lag0: int,
    filt: Filter,
    lags: int,
    rec: np.ndarray | None,
    skew_ppm: float | None = None,
) -> _Look:
    """Judge one speaker's filter output `corr` (corr[k] = lag lag0 + k; the recording has
    `lags` lags >= 0): fit its clock skew on the recording `rec`, or take `skew_ppm`."""
    count = max(1, min(len(corr), lags - lag0))  # the lags inside the recording
    strongest = int(np.argmax(np.abs(corr[:count])))
    lo = max(0, strongest - int(FIRST_WINDOW_S * filt.rate) - 2)
    hi = min(count, strongest + 3 + int(SHAPE_S * filt.rate) + 2)  # room for its shape
    analytic = _local_analytic(corr, lo, hi)
    env = np.abs(analytic)
    peak_pos = int(np.argmax(env[max(0, strongest - lo - 2) :])) + max(0, strongest - lo - 2)
    strong_at, strong_height = _envelope_peak(env, peak_pos)
    sigma = _noise_sigma(corr, strongest, count, filt.rate)
    # Leakage varies with lag: also measure the search window up to the first point that could
    # be the direct path (nothing of this speaker arrives before that point).
    earliest = int(np.argmax(env >= CANDIDATE_REL * strong_height)) - int(GUARD_S * filt.rate)
    if earliest >= int(MIN_NOISE_S * filt.rate):
        sigma = max(sigma, _mad_sigma(corr[lo : lo + earliest]))
    # ...and the whole search window (the median shrugs off a direct path and a few early
    # reflections): an absent speaker's best peak often sits where the other probes' leakage
    # starts, louder than the noise before it.
    near = strongest - int(NEAR_GUARD_S * filt.rate)
    if near - lo >= int(MIN_NOISE_S * filt.rate):
        sigma = max(sigma, _mad_sigma(corr[lo:near]))
    pnr = strong_height / sigma if sigma > 0 else np.inf
    if pnr < detect_threshold(lags):
        return _Look(Arrival(filt.index, False, None, _db(pnr), None), lag0 + strongest)
    pick = pick_direct(corr, analytic, lo, peak_pos, sigma, filt.rate, filt.kernel)
    first = pick.index
    direct_at, direct_height = _envelope_peak(env, first)
    direct = lag0 + lo + direct_at
    if rec is not None:
        slope = _half_delays(rec, filt, direct) if filt.halves else None
    else:
        slope = None if skew_ppm is None else -skew_ppm * 1e-6
    skew = None
    if slope is not None and abs(slope) <= MAX_SKEW_PPM * 1e-6:
        direct -= slope * filt.centroid
        skew = -slope * 1e6
    to_ms = 1000.0 / filt.rate
    arrival = Arrival(
        index=filt.index,
        detected=True,
        arrival_ms=direct * to_ms,
        snr_db=_db(direct_height / sigma if sigma > 0 else np.inf),
        level_dbfs=_db(direct_height * filt.rms),
        strongest_ms=(lag0 + lo + strong_at) * to_ms,
        skew_ppm=skew,
        unproven_ms=pick.unproven_ms,
    )
    start = max(0, lo + first - int(REPLAY_BEFORE_S * filt.rate))
    stop = min(len(corr), start + filt.local_fft - filt.length + 1)
    return _Look(
        arrival,
        lag0 + strongest,
        doubtful=pick.unproven_ms is not None or pnr < DOUBT_PNR,
        start=lag0 + start,
        window=np.array(corr[start:stop]),
        sigma=sigma,
    )


def _energy(look: _Look) -> float:
    """The energy of a heard speaker's response over its window, less the noise's share."""
    assert look.window is not None
    raw = float(np.sum(np.square(look.window, dtype=np.float64)))
    return max(0.0, raw - len(look.window) * look.sigma**2)


def _sounds(looks: list[_Look], filters: list[Filter]) -> list[tuple[int, np.ndarray]]:
    """Heard speakers' estimated sound in the recording (first sample, samples): each one's
    filter output over its window, every lag kept in proportion to how far it stands out of
    the noise (a Wiener-like gate: noise alone would add as much as it takes away), replayed
    through its reference (the FFTs batched over all of them)."""
    width = max(len(look.window) for look in looks if look.window is not None)
    windows = np.zeros((len(looks), width))
    for row, look in zip(windows, looks, strict=True):
        assert look.window is not None
        row[: len(look.window)] = look.window
    sigma = np.array([[look.sigma] for look in looks])
    envelope = np.maximum(np.abs(_analytic(windows)), 1e-300)
    gated = windows * np.clip(1.0 - (REPLAY_GATE * sigma / envelope) ** 2, 0.0, 1.0)
    sounds = replay(filters, gated)
    return [(look.start, sound) for look, sound in zip(looks, sounds, strict=True)]


def _segment(
    rec: np.ndarray, look: _Look, filt: Filter, others: list[tuple[int, np.ndarray]]
) -> tuple[int, int, np.ndarray]:
    """The lags a second look needs (first, last) and the stretch of recording they read,
    FFT-sized for the filter's design (or larger when they do not fit it), the others'
    estimated sound taken out."""
    rate, m = filt.rate, look.strongest
    first = max(0, m - int((FIRST_WINDOW_S + max(PROOF_NOISE_S)) * rate) - RELOOK_MARGIN)
    last = min(len(rec), m + int(SHAPE_S * rate) + ANALYTIC_MARGIN + 8)
    size = filt.local_fft  # the design's own size when the stretch fits it (0.5 s at 48 kHz)
    if last - first > size - filt.length:
        size = sfft.next_fast_len(last - first + filt.local_fft, real=True)
    start = first - filt.lead
    segment = np.zeros(size)
    lo, hi = max(0, start), min(len(rec), start + size)
    segment[lo - start : hi - start] = rec[lo:hi]
    for at, sound in others:
        lo, hi = max(at, start), min(at + len(sound), start + size)
        if lo < hi:
            segment[lo - start : hi - start] -= sound[lo - at : hi - at]
    return first, last, segment


def _second_looks(
    rec: np.ndarray, looks: list[_Look], filters: list[Filter], heard: list[int]
) -> None:
    """Look again at each doubtful speaker with the other speakers' estimated sound taken out
    of the stretch of recording its direct-path search reads: what is left there is its own
    sound and the noise, not the other probes' leakage (which, the probes being alike rather
    than orthogonal, can bury a weak direct path deeper than the noise does). The noise level
    is then that of the search window itself (the stretch holds no lags before it), the skew
    the first look's. A look that still hears the speaker replaces the first one."""
    energy = {k: _energy(looks[k]) for k in heard}
    plans: dict[int, list[int]] = {}
    for k in (k for k in heard if looks[k].doubtful):
        # the loudest others first, until what is left would leak too little to matter
        others = sorted((j for j in heard if j != k), key=lambda j: -energy[j])
        total = left = sum(energy[j] for j in others)
        plans[k] = []
        for j in others:
            if left <= (1 - REPLAY_SHARE) * total:
                break
            plans[k].append(j)
            left -= energy[j]
    needed = sorted({j for plan in plans.values() for j in plan})
    if not needed:
        return
    estimated = _sounds([looks[j] for j in needed], [filters[j] for j in needed])
    sounds = dict(zip(needed, estimated, strict=True))
    targets = [k for k in plans if plans[k]]
    stretches = [
        _segment(rec, looks[k], filters[k], [sounds[j] for j in plans[k]]) for k in targets
    ]
    # the stretches that fit their design's size, filtered at once (batched FFTs)
    batched = [i for i, (_, _, seg) in enumerate(stretches) if len(seg) == filters[0].local_fft]
    outputs: dict[int, np.ndarray] = {}
    if batched:
        spectra = sfft.rfft(np.stack([stretches[i][2] for i in batched]).astype(FFT_DTYPE), axis=-1)
        spectra *= np.stack([filters[targets[i]].local_spectrum for i in batched])
        outputs = dict(
            zip(batched, sfft.irfft(spectra, filters[0].local_fft, axis=-1), strict=True)
        )
    for i, (k, (first, last, segment)) in enumerate(zip(targets, stretches, strict=True)):
        filt = filters[k]
        if i in outputs:
            corr = outputs[i]
        else:
            corr = filt.at(len(segment)).apply(sfft.rfft(segment.astype(FFT_DTYPE)))
        again = _locate(
            corr[filt.lead : filt.lead + last - first + 1],
            first,
            filt,
            len(rec),
            None,
            looks[k].arrival.skew_ppm,
        )
        if again.arrival.detected:
            looks[k] = again


def _db(ratio: float) -> float:
    return float(20 * np.log10(max(ratio, 1e-12))) if np.isfinite(ratio) else 200.0


def analyze(recording: np.ndarray, rate: int, reference: ProbeSet) -> Analysis:
    """Find every reference signal's direct-path arrival in a mono recording (DESIGN §4.4)."""
    rec = _check(recording, rate, reference)
    warnings: list[str] = []
    clipped = float(np.mean(np.abs(rec) >= CLIP_LEVEL))
    if clipped > CLIP_WARN:
        warnings.append(
            f"the recording clips ({clipped:.1%} of samples at full scale): "
            "lower the microphone gain or the probe level"
        )
    rec = rec - float(np.mean(rec))  # a microphone's DC offset would step at the recording's end
    rms_dbfs = _db(float(np.sqrt(np.mean(rec**2))))
    if rms_dbfs < SILENT_DBFS:
        warnings.append("the recording is silent: is the microphone muted?")
        nothing = tuple(Arrival(i + 1, False, None, None, None) for i in range(reference.count))
        return Analysis(rate, rec.size / rate, nothing, None, (), tuple(warnings))
    # room for every lag of the filter's response without circular wrap (see make_filter)
    n_fft = sfft.next_fast_len(rec.size + reference.length + 2 * PAD, real=True)
    spectrum = sfft.rfft(rec.astype(FFT_DTYPE), n_fft)
    designs = make_filters(reference.signals, rate)
    looks = []
    # a few filters at a time (batched FFTs), as many as BATCH_BYTES of outputs hold
    batch = max(1, BATCH_BYTES // (4 * n_fft))
    for first in range(0, len(designs), batch):
        chunk = designs[first : first + batch]
        outputs = sfft.irfft(place(chunk, n_fft) * spectrum, n_fft, axis=-1)
        looks += [
            _locate(corr, 0, d, rec.size, rec) for d, corr in zip(chunk, outputs, strict=True)
        ]
        del outputs
    _second_looks(rec, looks, designs, [k for k, look in enumerate(looks) if look.arrival.detected])
    arrivals = []
    for index, look in enumerate(looks, start=1):
        arrival = look.arrival
        if arrival.unproven_ms is not None:
            warnings.append(
                f"speaker {index}: a peak {arrival.unproven_ms:.2f} ms before the path reported "
                "could not be confirmed as the direct path (too close to the noise and the "
                "other probes, or not shaped like this probe); arrival_ms is the earliest "
                "path that was (or the strongest)"
            )
        if arrival.detected and arrival.arrival_ms is not None:
            end_s = arrival.arrival_ms / 1000.0 + reference.duration_s
            if end_s > rec.size / rate:
                warnings.append(
                    f"speaker {index}'s probe runs past the end of the recording: record longer"
                )
        arrivals.append(arrival)
    times = [a.arrival_ms for a in arrivals if a.detected and a.arrival_ms is not None]
    spread = max(times) - min(times) if times else None
    if not times:
        warnings.append(
            "no probe was heard: check that the speakers play and the microphone hears them"
        )
    gaps = find_gaps(rec, rate, spectrum=spectrum, size=n_fft)
    return Analysis(rate, rec.size / rate, tuple(arrivals), spread, gaps, tuple(warnings))


def textbook_arrivals(recording: np.ndarray, rate: int, reference: ProbeSet) -> list[float]:
    """The textbook estimate, for comparison: full FFT cross-correlation of the recording with
    each reference, argmax, parabolic interpolation; ms from the recording's start."""
    rec = _check(recording, rate, reference)
    out = []
    for signal in reference.signals:
        # Full linear cross-correlation through one zero-padded FFT: lags -(L-1) .. N-1.
        size = sfft.next_fast_len(rec.size + signal.size - 1, real=True)
        circular = sfft.irfft(sfft.rfft(rec, size) * np.conj(sfft.rfft(signal, size)), size)
        corr = np.concatenate([circular[size - (signal.size - 1) :], circular[: rec.size]])
        lags = np.arange(-(signal.size - 1), rec.size)
        peak = int(np.argmax(corr))
        offset = 0.0
        if 0 < peak < len(corr) - 1:
            left, mid, right = corr[peak - 1 : peak + 2]
            denom = left - 2 * mid + right
            if denom != 0:
                offset = 0.5 * (left - right) / denom
        out.append((lags[peak] + offset) / rate * 1000.0)
    return out


__all__ = [
    "Analysis",
    "Arrival",
    "Gap",
    "ProbeError",
    "analyze",
    "find_gaps",
    "textbook_arrivals",
]
