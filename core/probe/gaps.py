"""Gaps: silences of at least 20 ms inside an otherwise continuous tone or programme.

A Bluetooth dropout cuts the sound off at once and leaves only the room noise for tens of
milliseconds, so a gap is a run of short frames far below the programme's typical level, with
programme on both sides (silence before the first and after the last sound is not a gap), that
starts abruptly (a note dying away into a pause is music, not a dropout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

#: Frame length and hop of the level track: short enough to time a 20 ms hole to ~0.5 ms,
#: long enough to contain a cycle of anything above 500 Hz.
FRAME_S: Final = 0.002
HOP_S: Final = 0.0005
#: A frame is silent this far below the programme's median level (a dropout is a digital
#: zero; music's own quiet moments stay within ~20 dB of the median over a few ms).
SILENT_BELOW_DB: Final = 25.0
#: ...and at least this far above the quietest sustained level (the room's noise floor).
ABOVE_FLOOR_DB: Final = 6.0
#: A gap starts abruptly: 1.5-4 ms before it the level is at least this far above the silence
#: threshold (a decay of 25 dB within 2 ms is a cut, not a natural release).
ABRUPT_DB: Final = 10.0
#: Frames within this of the loudest frame count as programme for the median.
ACTIVE_RANGE_DB: Final = 40.0
#: Levels are floored here (an all-zero frame is -200 dB, not -inf).
FLOOR_DB: Final = -200.0


@dataclass(frozen=True, slots=True)
class Gap:
    """A silence inside the programme: when it starts and how long it lasts, in ms."""

    start_ms: float
    duration_ms: float


def frame_levels_db(recording: np.ndarray, rate: int) -> tuple[np.ndarray, int, int]:
    """Level (dB, mean square) of frames of FRAME_S every HOP_S; also frame and hop in samples."""
    frame = max(1, round(FRAME_S * rate))
    hop = max(1, round(HOP_S * rate))
    if len(recording) < frame:
        return np.zeros(0), frame, hop
    energy = np.concatenate([[0.0], np.cumsum(np.square(recording, dtype=np.float64))])
    starts = np.arange(0, len(recording) - frame + 1, hop)
    mean_square = np.maximum((energy[starts + frame] - energy[starts]) / frame, 0.0)
    return np.maximum(10 * np.log10(mean_square + 1e-30), FLOOR_DB), frame, hop


def find_gaps(recording: np.ndarray, rate: int, *, min_gap_ms: float = 20.0) -> tuple[Gap, ...]:
    """Silences >= `min_gap_ms` with programme before and after them (none in pure silence)."""
    levels, frame, hop = frame_levels_db(np.asarray(recording, dtype=np.float64), rate)
    if levels.size == 0 or levels.max() <= FLOOR_DB:
        return ()
    active = levels >= levels.max() - ACTIVE_RANGE_DB
    programme = float(np.median(levels[active]))
    window = max(1, round(min_gap_ms / 1000 / 2 / (hop / rate)))
    sustained = np.convolve(levels, np.ones(window) / window, mode="valid")
    floor = float(sustained.min()) if sustained.size else float(levels.min())
    if programme - floor < ABOVE_FLOOR_DB * 2:
        return ()  # no contrast: steady noise, or a programme without any quiet moment
    threshold = max(programme - SILENT_BELOW_DB, floor + ABOVE_FLOOR_DB)
    silent = levels < threshold
    sounding = np.flatnonzero(~silent)
    if sounding.size == 0:
        return ()
    first, last = sounding[0], sounding[-1]
    lead = -(-frame // hop)  # frames that start this many hops before a hole end before it
    gaps = []
    edges = np.diff(np.concatenate([[0], silent[first : last + 1].astype(np.int8), [0]]))
    for run_start, run_end in zip(
        np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True
    ):
        start = (first + run_start) * hop  # first sample of the first all-silent frame
        end = (first + run_end - 1) * hop + frame  # last sample of the last all-silent frame
        duration_ms = (end - start) / rate * 1000.0
        before = levels[max(0, first + run_start - 2 * lead) : max(0, first + run_start - lead + 1)]
        abrupt = before.size > 0 and float(before.max()) >= threshold + ABRUPT_DB
        if abrupt and duration_ms >= min_gap_ms - HOP_S * 1000.0:  # edges blur a hole by < a hop
            gaps.append(Gap(start_ms=start / rate * 1000.0, duration_ms=duration_ms))
    return tuple(gaps)
