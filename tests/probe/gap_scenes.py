"""Gap recordings with known truth, written as an outside tester would (plain numpy): a tone
of 200-5000 Hz or music with 20-500 ms holes, 3-10 ms dips that are not gaps, lead silence and
an early stop, in pink noise (or babble over it) at 15-40 dB SNR, peak -36..-6 dBFS, 16 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from tests.probe.scenes import RATE, babble, finish, music, pink


@dataclass(frozen=True, slots=True)
class GapScene:
    recording: np.ndarray
    holes: tuple[tuple[float, float], ...]  # (start ms, duration ms)
    dips: tuple[tuple[float, float], ...]
    programme: str
    snr_db: float
    peak_dbfs: float
    seed: int

    def describe(self) -> str:
        return (
            f"seed={self.seed} {self.programme} at {self.snr_db:.1f} dB SNR, peak "
            f"{self.peak_dbfs:.1f} dBFS, holes {self.holes}, dips {self.dips}"
        )


def gap_scene(seed: int, *, programme: str | None = None, snr_db: float | None = None) -> GapScene:
    """A tone (or music) with holes and short dips, lead silence and an early stop, in noise."""
    rng = np.random.default_rng(seed)
    programme = programme or str(rng.choice(["tone", "tone", "tone", "music"]))
    snr_db = float(rng.uniform(15, 40)) if snr_db is None else snr_db
    duration = float(rng.uniform(2.0, 6.0))
    n = round(duration * RATE)
    lead = int(rng.uniform(0.05, 0.8) * RATE) if rng.random() < 0.5 else 0
    stop = n - (int(rng.uniform(0.05, 0.8) * RATE) if rng.random() < 0.5 else 0)
    t = np.arange(n) / RATE
    if programme == "tone":
        freq = float(np.exp(rng.uniform(np.log(200), np.log(5000))))
        programme = f"tone {freq:.0f} Hz"
        sound = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
    else:
        sound = music(rng, n, drums=bool(rng.random() < 0.5))
        sound /= np.sqrt(np.mean(sound**2))
    power = float(np.mean(sound[lead:stop] ** 2))
    sound[:lead] = 0.0
    sound[stop:] = 0.0
    # holes 20-500 ms (log-uniform) with at least 150 ms of programme between events
    holes: list[tuple[int, int]] = []
    dips: list[tuple[int, int]] = []
    spots = int(rng.integers(1, 5))
    for _ in range(spots + int(rng.integers(0, 4))):
        is_hole = len(holes) < spots
        size = (
            int(np.exp(rng.uniform(np.log(0.020), np.log(0.5))) * RATE)
            if is_hole
            else int(rng.uniform(0.003, 0.010) * RATE)
        )
        for _attempt in range(20):
            at = int(rng.uniform(lead + 0.15 * RATE, stop - 0.15 * RATE - size))
            if at <= lead:
                break
            if all(
                at + size + 0.15 * RATE < s or at > s + d + 0.15 * RATE for s, d in holes + dips
            ):
                (holes if is_hole else dips).append((at, size))
                break
    for at, size in holes:
        # a tone's hole may only attenuate it (15-40 dB); music's holes are silence (a quiet
        # passage of music cannot be told from music turned down by 15 dB)
        attenuated = programme != "music" and rng.random() < 0.3
        depth = 10 ** (-rng.uniform(15, 40) / 20) if attenuated else 0.0
        sound[at : at + size] *= depth
    for at, size in dips:
        sound[at : at + size] = 0.0
    noise = pink(rng, n)
    if rng.random() < 0.3:  # babble over a quieter steady room noise
        talk = babble(rng, n)
        noise = talk / np.sqrt(np.mean(talk**2)) + 0.3 * noise / np.sqrt(np.mean(noise**2))
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2))
    peak = float(rng.uniform(-36, -6))
    to_ms = 1000.0 / RATE
    return GapScene(
        recording=finish(sound + noise, peak),
        holes=tuple(sorted((a * to_ms, s * to_ms) for a, s in holes)),
        dips=tuple(sorted((a * to_ms, s * to_ms) for a, s in dips)),
        programme=programme,
        snr_db=snr_db,
        peak_dbfs=peak,
        seed=seed,
    )


#: A reported gap matches a hole when its start is within 2 ms and its length within 5 ms.
START_TOL_MS: Final = 2.0
DURATION_TOL_MS: Final = 5.0


def score_gaps(scene: GapScene, found: list[tuple[float, float]]) -> tuple[int, int]:
    """(holes found, false gaps) of one recording."""
    matched = 0
    used: set[int] = set()
    for start, length in scene.holes:
        for k, (f_start, f_len) in enumerate(found):
            if (
                k not in used
                and abs(f_start - start) <= START_TOL_MS
                and abs(f_len - length) <= DURATION_TOL_MS
            ):
                used.add(k)
                matched += 1
                break
    false = 0
    for k, (f_start, f_len) in enumerate(found):
        if k in used:
            continue
        overlaps = any(f_start < s + d and s < f_start + f_len for s, d in scene.holes)
        false += not overlaps  # a hole found but timed badly counts as a miss, not twice
    return matched, false
