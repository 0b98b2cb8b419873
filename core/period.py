"""Find the period of a speaker's dropouts (DESIGN §4.3): robust to jitter, missed and extra drops.

A periodic dropper (firmware buffer timeout) drops every P seconds ± a few percent, measured
from its previous drop. Some drops are missed (the speaker was idle) and unrelated drops mix
in. For each candidate P (from the drops' own spacings) a dynamic programme finds the chain
of drops that best fits "each next drop one to MAX_SKIP periods after the previous one"; the
chain is then tested against what random drops at the same rate would give by chance, with
the number of candidates tried accounted for, so random droppers get no period.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: Per-interval jitter tolerated, as a fraction of the period (the spec asks for ±2 %).
TOLERANCE: Final = 0.03
#: At most this many periods between two chained drops (so up to MAX_SKIP - 1 missed drops).
MAX_SKIP: Final = 3
#: Fewest drops a chain needs before a period is reported.
MIN_CHAIN: Final = 4
#: Significance: the chance that random drops make a chain this good, after the candidate count
#: correction, must be below this.
ALPHA: Final = 1e-3
#: Assumed chance that a periodic dropper drops in a given slot (for chain scoring only).
HIT_RATE: Final = 0.8
#: Periods shorter than this are not looked for (seconds): faster "drops" are flapping.
MIN_PERIOD_S: Final = 5.0
#: Drops analysed per speaker (the most recent ones).
MAX_DROPS: Final = 200


@dataclass(frozen=True, slots=True)
class Period:
    """A detected dropout period."""

    period_s: float
    #: 0..1, how sure we are it is not chance (1 - corrected false-alarm probability).
    confidence: float
    #: Drop times that fit the period (the chain), oldest first.
    chain: tuple[float, ...]
    #: Expected slots the chain spans (hits + misses).
    slots: int

    @property
    def last(self) -> float:
        return self.chain[-1]

    def next_expected(self, now: float) -> float:
        """The next predicted drop after `now` (skipping slots that already passed)."""
        steps = max(1, math.floor((now - self.last) / self.period_s) + 1)
        return self.last + steps * self.period_s


def _binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p)."""
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    total = 0.0
    for k in range(successes, trials + 1):
        total += math.comb(trials, k) * p**k * (1 - p) ** (trials - k)
    return min(1.0, total)


def _candidates(times: Sequence[float], span: float) -> list[float]:
    raw: list[float] = []
    for i, t in enumerate(times):
        for j in range(i + 1, min(i + 1 + MAX_SKIP + 2, len(times))):
            gap = times[j] - t
            for m in range(1, MAX_SKIP + 1):
                p = gap / m
                if MIN_PERIOD_S <= p <= span / (MIN_CHAIN - 1):
                    raw.append(p)
    raw.sort()
    merged: list[float] = []
    for p in raw:
        if not merged or p > merged[-1] * (1 + TOLERANCE / 2):
            merged.append(p)
    return merged


def _best_chain(
    times: Sequence[float], period: float, q: Sequence[float]
) -> tuple[float, list[int], int]:
    """Highest-scoring chain for one period: (score, drop indices, slots spanned)."""
    n = len(times)
    score = [0.0] * n
    back = [-1] * n
    slots = [1] * n
    hit = [math.log(HIT_RATE / q[m]) for m in range(MAX_SKIP + 1)]
    miss = [math.log((1 - HIT_RATE) / (1 - q[m])) for m in range(MAX_SKIP + 1)]
    for i in range(n):
        for m in range(1, MAX_SKIP + 1):
            width = TOLERANCE * m * period
            lo = bisect_left(times, times[i] - m * period - width, 0, i)
            hi = bisect_right(times, times[i] - m * period + width, 0, i)
            for j in range(lo, hi):
                candidate = score[j] + hit[m] + (m - 1) * miss[1]
                if candidate > score[i]:
                    score[i], back[i], slots[i] = candidate, j, slots[j] + m
    end = max(range(n), key=lambda k: score[k])
    chain = [end]
    while back[chain[-1]] >= 0:
        chain.append(back[chain[-1]])
    chain.reverse()
    return score[end], chain, slots[end]


def find_period(drop_times: Sequence[float]) -> Period | None:
    """The dropout period of one speaker, or None when the drops show no significant period."""
    times = sorted(drop_times)[-MAX_DROPS:]
    if len(times) < MIN_CHAIN:
        return None
    span = times[-1] - times[0]
    if span <= 0:
        return None
    rate = (len(times) - 1) / span
    candidates = _candidates(times, span)
    if not candidates:
        return None
    best: tuple[float, float, list[int], int] | None = None
    for period in candidates:
        # Chance that a random drop falls in a slot's window (width grows with the skip).
        q = [0.0] + [
            1 - math.exp(-rate * 2 * TOLERANCE * m * period) for m in range(1, MAX_SKIP + 1)
        ]
        q = [max(x, 1e-9) for x in q]
        score, chain, slots = _best_chain(times, period, q)
        if best is None or score > best[0]:
            best = (score, period, chain, slots)
    assert best is not None
    _, period, chain, slots = best
    if len(chain) < MIN_CHAIN:
        return None
    chain_times = [times[i] for i in chain]
    refined = (chain_times[-1] - chain_times[0]) / (slots - 1)
    # Significance: hits beyond the first among the later slots, if drops were random.
    q1 = 1 - math.exp(-rate * 2 * TOLERANCE * refined)
    chance = _binomial_tail(len(chain) - 1, slots - 1, q1) * len(candidates) * len(times)
    if chance >= ALPHA:
        return None
    return Period(refined, max(0.0, min(1.0, 1 - chance / ALPHA)), tuple(chain_times), slots)
