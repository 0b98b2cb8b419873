"""Gaps: silences of at least 20 ms inside an otherwise continuous tone or programme.

A Bluetooth dropout cuts the sound off at once and leaves only the room's noise for tens of
milliseconds. The level is tracked where the programme is: at the tone's own frequency when the
recording is one tone (a narrow band holds the tone and little of the noise), over the whole
band otherwise. A gap is a run of frames well below the programme and near the noise floor
measured where the programme is absent, with programme on both sides (silence before the first
and after the last sound is not a gap), that starts abruptly (a note dying away is music).
The thresholds follow the recording's own contrast, so any absolute level and any SNR of 10 dB
or more works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.fft as sfft

#: Length of the level track's frames and their hop: short enough to time a 20 ms hole to a
#: fraction of a ms, long enough to contain a cycle of anything above 500 Hz.
FRAME_S: Final = 0.002
HOP_S: Final = 0.0005
#: The tone test ignores the spectrum below RUMBLE_HZ (DC, the room's rumble) and counts the
#: power within TONE_HZ of the peak as the tone's (its holes spread it over a few Hz).
RUMBLE_HZ: Final = 25.0
TONE_HZ: Final = 50.0
#: The recording is "one tone" when TONE_HZ around its spectral peak hold this share of its
#: power (a tone at 15 dB SNR in pink noise: ~97 %; music: < 20 %).
TONE_SHARE: Final = 0.5
#: Programme-to-floor contrast (median levels) below which nothing can be told apart (issue 11:
#: a hole must be found whenever it is >= 10 dB below the programme; 2 dB of allowance).
MIN_CONTRAST_DB: Final = 8.0
#: A frame is silent this far below the programme: half the contrast, at least 6 dB (a hole
#: 10 dB down then sits 4 dB under it; a tone's own frames never dip 6 dB) and at most 12 dB
#: for a tone (a hole that only attenuates it by 15 dB is still found) or 20 dB for music
#: (whose quieter moments reach ~15 dB under its median over 2 ms frames).
SILENT_MIN_DB: Final = 6.0
SILENT_MAX_TONE_DB: Final = 12.0
SILENT_MAX_DB: Final = 20.0
#: A run of silent frames must lie this much below the programme on the median (the hole's
#: own depth, >= 10 dB less a 1 dB allowance for the level's scatter).
HOLE_DEPTH_DB: Final = 9.0
#: Width of the majority vote over the silent/sounding frames (a 5 ms median filter: a 2 ms
#: frame of noise over the threshold, or of programme under it, does not split a run).
MAJORITY_S: Final = 0.005
#: Sounding runs shorter than this are noise poking through a silence, not programme (a
#: narrow band of noise 10 dB under the tone exceeds the threshold in ~8 % of frames, and
#: rarely two in a row).
MIN_SOUND_S: Final = 0.004
#: A hole may measure this much shorter than `min_gap_ms` (edges timed to a fraction of a
#: frame); dips of 3-10 ms that are not gaps stay well below.
GAP_SLACK_MS: Final = 3.0
#: A gap starts abruptly: 1-4 ms before it the level is this far above the threshold (or
#: within 2 dB of the programme when the contrast is small); a release of 10 dB in 3 ms is a
#: cut, not a note dying away.
ABRUPT_DB: Final = 10.0
ABRUPT_NEAR_DB: Final = 2.0
#: ...or the programme holds steady (within FLAT_DB, at least FLAT_ABOVE_DB over the
#: threshold) over the 3 ms before the cut: a quiet passage of music cut off, where a release
#: would still be falling (a 6 ms release falls 4 dB in those 3 ms).
FLAT_DB: Final = 3.0
FLAT_ABOVE_DB: Final = 4.0
#: ...or the last frame that ends before the silence is still this far over the threshold:
#: the level fell by that much within one frame (2 ms), where a release of 6 ms falls 3 dB.
SHARP_DB: Final = 5.0
#: Frames within this of the loudest sustained level (and above the mid-point between it and the
#: floor) make the programme's median level: music's quiet passages, not the room's silence.
PROGRAMME_RANGE_DB: Final = 30.0
#: The cheap first look (rough track) accepts this much less contrast than the real one.
SCREEN_SLACK_DB: Final = 3.0
#: Levels are floored here (an all-zero frame is -200 dB, not -inf).
FLOOR_DB: Final = -200.0


@dataclass(frozen=True, slots=True)
class Gap:
    """A silence inside the programme: when it starts and how long it lasts, in ms."""

    start_ms: float
    duration_ms: float


@dataclass(frozen=True, slots=True)
class _Track:
    """A level track: `value` is linear in the share of the frame the programme fills (mean
    square broadband, coherent amplitude in the tone's band), `db` is its level."""

    value: np.ndarray
    db: np.ndarray
    frame: int
    hop: int
    tonal: bool = False


def _tone_frequency(spectrum: np.ndarray, size: int, rate: int) -> float | None:
    """The frequency of the one tone that dominates the recording (its real FFT at `size`),
    if one does."""
    power = np.abs(spectrum) ** 2
    bin_hz = rate / size
    power[: int(RUMBLE_HZ / bin_hz) + 1] = 0.0  # DC and the room's rumble are not a tone
    total = float(power.sum())
    if total <= 0 or power.size < 3:
        return None
    peak = int(np.argmax(power))
    reach = max(1, round(TONE_HZ / bin_hz))
    share = float(power[max(0, peak - reach) : peak + reach + 1].sum()) / total
    if share < TONE_SHARE:
        return None
    lo, mid, hi = power[peak - 1 : peak + 2] if 0 < peak < len(power) - 1 else (0, 1, 0)
    denom = lo - 2 * mid + hi
    offset = 0.5 * (lo - hi) / denom if denom < 0 else 0.0
    return float((peak + offset) * bin_hz)


def _analytic_power(recording: np.ndarray, spectrum: np.ndarray, size: int) -> np.ndarray:
    """|analytic signal|^2 / 2 = (x^2 + Hilbert{x}^2) / 2: a steady sine's mean square at
    every sample. The Hilbert transform from the recording's real FFT (-j on positive
    frequencies) and one inverse."""
    quadrature = sfft.irfft(spectrum * -1j, size)[: len(recording)]
    return np.asarray((recording**2 + quadrature.astype(np.float64) ** 2) / 2)


def _box_means(values: np.ndarray, frame: int, hop: int) -> np.ndarray:
    sums = np.concatenate([[0], np.cumsum(values)])
    starts = np.arange(0, len(values) - frame + 1, hop)
    return np.asarray((sums[starts + frame] - sums[starts]) / frame)


def level_track(
    recording: np.ndarray,
    rate: int,
    spectrum: np.ndarray | None = None,
    size: int = 0,
    *,
    rough: bool = False,
) -> _Track:
    """The level of FRAME_S frames every HOP_S: in the tone's band for a one-tone recording.
    `spectrum` may bring the recording's real FFT at `size` (>= its length), if already made.
    `rough`: the plain mean square instead of the analytic signal's power (a low note ripples
    in it, which only adds quiet frames: good enough to see that there is no silence)."""
    hop = max(1, round(HOP_S * rate))
    if spectrum is None or size < len(recording):
        size = sfft.next_fast_len(max(1, len(recording)), real=True)
        spectrum = sfft.rfft(recording.astype(np.float32), size)
    tone = _tone_frequency(spectrum, size, rate)
    if tone is None:
        frame = max(1, round(FRAME_S * rate))
        if len(recording) < frame:
            return _Track(np.zeros(0), np.zeros(0), frame, hop)
        # the analytic signal's power: no ripple at twice a low note's frequency
        power = recording**2 if rough else _analytic_power(recording, spectrum, size)
        value = np.maximum(_box_means(power, frame, hop), 0.0)
        return _Track(value, np.maximum(10 * np.log10(value + 1e-30), FLOOR_DB), frame, hop)
    # Whole periods of the double frequency, so the demodulated tone's image averages out.
    frame = max(1, round(max(1, round(FRAME_S * 2 * tone)) * rate / (2 * tone)))
    if len(recording) < frame:
        return _Track(np.zeros(0), np.zeros(0), frame, hop)
    carrier = np.exp(-2j * np.pi * tone / rate * np.arange(len(recording)))
    base = recording * carrier
    value = 2 * np.abs(_box_means(base.real, frame, hop) + 1j * _box_means(base.imag, frame, hop))
    return _Track(value, np.maximum(20 * np.log10(value + 1e-30), FLOOR_DB), frame, hop, True)


def _majority(mask: np.ndarray, width: int) -> np.ndarray:
    """Each frame takes the majority of the `width` frames centred on it (a median filter:
    single frames of noise above or programme below the threshold go, edges stay put)."""
    if width < 3 or mask.size < width:
        return mask.copy()
    counts = np.convolve(mask.astype(np.float64), np.ones(width), mode="same")
    return np.asarray(counts > width / 2)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _edge(track: _Track, lo: int, hi: int, level: float, rising: bool) -> float | None:
    """Frame index (fractional) where the track crosses `level` between frames lo..hi."""
    lo, hi = max(0, lo), min(len(track.value) - 1, hi)
    if hi <= lo:
        return None
    part = track.value[lo : hi + 1]
    above = part >= level
    if rising:
        after = np.flatnonzero(above)
        if after.size == 0 or after[0] == 0:
            return None
        k = int(after[0]) - 1
    else:
        before = np.flatnonzero(above)
        if before.size == 0 or before[-1] == len(part) - 1:
            return None
        k = int(before[-1])
    a, b = float(part[k]), float(part[k + 1])
    fraction = (level - a) / (b - a) if b != a else 0.5
    return lo + k + float(np.clip(fraction, 0.0, 1.0))


def find_gaps(
    recording: np.ndarray,
    rate: int,
    *,
    min_gap_ms: float = 20.0,
    spectrum: np.ndarray | None = None,
    size: int = 0,
) -> tuple[Gap, ...]:
    """Silences >= `min_gap_ms` with programme before and after them (none in pure silence).
    `spectrum`: the recording's real FFT at `size`, if the caller has it (saves one FFT)."""
    rec = np.asarray(recording, dtype=np.float64)
    if spectrum is None or size < len(rec):
        size = sfft.next_fast_len(max(1, len(rec)), real=True)
        spectrum = sfft.rfft(rec.astype(np.float32), size)
    track = level_track(rec, rate, spectrum, size, rough=True)
    if not track.tonal:
        # A probe recording seldom holds a silence: look with the cheap track first.
        if not _gaps(track, rate, min_gap_ms, screen=True):
            return ()
        track = level_track(rec, rate, spectrum, size)
    return _gaps(track, rate, min_gap_ms)


def _gaps(track: _Track, rate: int, min_gap_ms: float, *, screen: bool = False) -> tuple[Gap, ...]:
    """The gaps in a level track; with `screen`, a placeholder as soon as any silence inside
    the programme at least half as long as a gap is seen (nothing measured, nothing judged)."""
    levels = track.db
    if levels.size == 0 or levels.max() <= FLOOR_DB:
        return ()
    hop_s = track.hop / rate
    window = max(1, round(min_gap_ms / 1000 / 2 / hop_s))
    sustained = np.convolve(levels, np.ones(window) / window, mode="valid")
    lowest = float(sustained.min()) if sustained.size else float(levels.min())
    top = float(sustained.max()) if sustained.size else float(levels.max())
    loud = levels >= max(0.5 * (lowest + top), top - PROGRAMME_RANGE_DB)
    programme = float(np.median(levels[loud]))
    quiet = levels < 0.5 * (lowest + programme)
    if not np.any(quiet):
        return ()  # never quiet: no silence anywhere
    floor = float(np.median(levels[quiet]))  # the room where the programme is absent
    contrast = programme - floor
    if contrast < MIN_CONTRAST_DB - (SCREEN_SLACK_DB if screen else 0.0):
        return ()  # no contrast: steady noise, or a programme without any quiet moment
    deepest = SILENT_MAX_TONE_DB if track.tonal else SILENT_MAX_DB
    threshold = programme - min(max(SILENT_MIN_DB, contrast / 2), deepest)
    abrupt = threshold + min(ABRUPT_DB, programme - threshold - ABRUPT_NEAR_DB)
    silent = _majority(levels < threshold, max(1, round(MAJORITY_S / hop_s)))
    short = max(1, round(MIN_SOUND_S / hop_s))
    for start, stop in _runs(~silent):
        if stop - start < short:
            silent[start:stop] = True  # noise poking through, not programme
    sounding = np.flatnonzero(~silent)
    if sounding.size == 0:
        return ()
    first, last = int(sounding[0]), int(sounding[-1])
    box = -(-track.frame // track.hop)  # hops a frame spans
    gaps = []
    for run_start, run_stop in _runs(silent[first : last + 1]):
        i0, i1 = first + run_start, first + run_stop  # silent frames i0 .. i1 - 1
        if screen:
            if (i1 - i0) * hop_s * 1000 >= 0.5 * min_gap_ms:
                return (Gap(start_ms=i0 * hop_s * 1000, duration_ms=0.0),)
            continue
        if float(np.median(levels[i0:i1])) > programme - HOLE_DEPTH_DB:
            continue
        before = levels[max(0, i0 - 2 * box - 2) : max(0, i0 - box // 2)]
        steady = levels[max(0, i0 - 2 * box - 2) : max(0, i0 - box)]
        steep = before.size > 0 and float(before.max()) >= abrupt
        flat = steady.size > 0 and (
            float(steady.max() - steady.min()) <= FLAT_DB
            and float(steady.min()) >= threshold + FLAT_ABOVE_DB
        )
        edge = levels[max(0, i0 - box - 1) : max(0, i0 - box + 1)]
        sharp = edge.size > 0 and float(edge.max()) >= threshold + SHARP_DB
        if not (steep or flat or sharp):
            continue  # a release into a pause, not a cut
        inside = float(np.median(track.value[i0:i1]))
        # the level just outside the frames that overlap the hole
        v_before = float(np.median(track.value[max(0, i0 - box - 3) : max(1, i0 - box)]))
        after = track.value[i1 + box - 1 : i1 + box + 2]
        v_after = float(np.median(after)) if after.size else v_before
        fall = _edge(track, i0 - box - 2, i0 + 1, 0.5 * (v_before + inside), rising=False)
        rise = _edge(track, i1 - 2, i1 + box + 1, 0.5 * (v_after + inside), rising=True)
        half = track.frame / 2.0
        start_at = fall * track.hop + half if fall is not None else float(i0 * track.hop)
        end_at = (
            rise * track.hop + half
            if rise is not None
            else float((i1 - 1) * track.hop + track.frame)
        )
        duration_ms = (end_at - start_at) / rate * 1000.0
        if duration_ms >= min_gap_ms - GAP_SLACK_MS:
            gaps.append(Gap(start_ms=start_at / rate * 1000.0, duration_ms=duration_ms))
    return tuple(gaps)
