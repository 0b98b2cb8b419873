"""Find the period of a speaker's dropouts (DESIGN §4.3): robust to jitter, missed and extra drops.

A periodic dropper (firmware buffer timeout) drops every P s ± a few %, counted from its previous
drop, so jitter adds up: chains of consecutive drops are followed, not a fixed phase. Drops may be
missed and unrelated ones mix in (and may restart the timer). For each candidate P a dynamic
programme finds the likeliest chain; it is tested against chance *locally* (the dropouts near each
slot taken as placed at random, so bursts explain themselves), corrected for every period, start
and window looked at. A period change shows as recent drops (the last half, quarter, ...) with
another period: the recent one is reported, with `previous_s` and `changed_at`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Final

#: Window for the next drop, ± this fraction of P (the spec's ±2 % jitter and the period's own
#: error); m periods on it is TOLERANCE·√m·P, as jitter adds up like a random walk (m intervals
#: of ±2 % uniform jitter have σ = 1.15 %·√m: the window is ±2.6 σ).
TOLERANCE: Final = 0.03
#: Longest gap bridged, in periods (at 40 % missed drops, 12 in a row: once in 60 000 slots).
MAX_SKIP: Final = 12
#: Fewest periodic drops (hits + the first) a chain needs.
MIN_CHAIN: Final = 4
#: Family-wise false-alarm probability per speaker: 1 random dropper in 100 (the target is 1 in
#: 20; the margin covers the test's approximations). A clean chain then needs 5 drops: 4 hits
#: at q ≈ 6 % happen by chance 1.3e-5 × (≈ 100 periods × 5 starts) < 1 %; 4 drops never pass.
ALPHA: Final = 0.01
#: Chance that a periodic dropper drops in its slot: first guess, then fitted per chain within
#: HIT_BOUNDS (a chain with no miss yet must still afford one).
HIT_RATE: Final = 0.8
HIT_BOUNDS: Final = (0.1, 0.95)
#: Shortest period looked for (s); drops closer than this to the previous one are one dropout.
MIN_PERIOD_S: Final = 5.0
#: Drops analysed per speaker, the most recent (200 intervals: the period to ≈ 0.1 %).
MAX_DROPS: Final = 200
#: Candidates: spacings from each drop to its next PAIR_SPAN drops (extras may lie between),
#: the TOP_CANDIDATES with the most spacings within ±TOLERANCE of them.
PAIR_SPAN: Final = 3
TOP_CANDIDATES: Final = 10
#: Smallest recent window analysed on its own (a clean chain needs 5 drops, see ALPHA).
MIN_RECENT: Final = 8
#: A change: periods more than CHANGE_MIN apart (two estimates of one period from ≥ 8 drops
#: differ by well under 1 %), the drops CHANGE_ODDS times likelier under the new one (the odds
#: of ALPHA: a harmonic, P -> 2P, seen by chance in a few drops with misses is no change).
CHANGE_MIN: Final = 0.03
CHANGE_ODDS: Final = 1 / ALPHA
#: A slot not shown yet stays due for this fraction of its window: past ≈ 1 σ of jitter a missed
#: drop is likelier than a late one (1 - Φ(x) = (1 - HIT_RATE)·Φ(x) at x = 0.97 σ; window 2.6 σ).
DUE_GRACE: Final = 0.37


@dataclass(frozen=True, slots=True)
class Period:
    """A detected dropout period."""

    period_s: float
    #: 0..1: 0 when chance (corrected) is at ALPHA, 1 when it is ALPHA² or less (log scale).
    confidence: float
    #: Drop times that fit the period (the chain), oldest first.
    chain: tuple[float, ...]
    #: Slots the chain spans (hits + misses), restarts not counted.
    slots: int
    #: The period before a change and the first drop at the current one (None: no change seen).
    previous_s: float | None = None
    changed_at: float | None = None

    @property
    def last(self) -> float:
        return self.chain[-1]

    def next_expected(self, now: float) -> float:
        """The next predicted drop: the first slot after `now`, or one just due (its jitter
        window still open: up to ≈ 1 % of P before `now`)."""
        if now < self.last:
            return min(t for t in self.chain if t > now)
        k = math.floor((now - self.last) / self.period_s) + 1
        due = now - (self.last + (k - 1) * self.period_s)
        if k > 1 and due <= DUE_GRACE * TOLERANCE * math.sqrt(k - 1) * self.period_s:
            k -= 1
        return self.last + k * self.period_s


@dataclass(frozen=True, slots=True)
class _Fit:
    period: float
    chain: tuple[float, ...]
    slots: int
    chance: float  # not corrected for the looks
    score: float  # log-likelihood ratio, periodic vs random


def _binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p), summed in log space."""
    if successes <= 0 or p >= 1:
        return 1.0
    if successes > trials or p <= 0:
        return 0.0
    lp, lq, base = math.log(p), math.log1p(-p), math.lgamma(trials + 1)
    terms = (
        base - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * lp + (trials - k) * lq
        for k in range(successes, trials + 1)
    )
    return min(1.0, sum(math.exp(x) for x in terms))


def _clusters(times: Sequence[float]) -> list[int]:
    """Dropout number of each drop: flaps (< MIN_PERIOD_S after the previous drop) are one
    dropout. Chains never link two drops of one dropout and the chance test counts dropouts."""
    out = [0] * len(times)
    for i in range(1, len(times)):
        out[i] = out[i - 1] + (times[i] - times[i - 1] >= MIN_PERIOD_S)
    return out


def _candidates(times: Sequence[float], p_max: float) -> list[float]:
    n, cid = len(times), _clusters(times)
    gaps = sorted(
        g
        for i in range(n)
        for j in range(i + 1, min(n, i + 1 + PAIR_SPAN))
        if MIN_PERIOD_S <= (g := times[j] - times[i]) <= p_max and cid[i] != cid[j]
    )
    bands = [
        (bisect_left(gaps, g * (1 - TOLERANCE)), bisect_right(gaps, g * (1 + TOLERANCE)))
        for g in gaps
    ]
    chosen: list[float] = []
    for lo, hi in sorted(bands, key=lambda band: band[0] - band[1]):  # most spacings first
        centre = gaps[(lo + hi) // 2]  # the median spacing near this one
        if all(abs(centre / c - 1) > TOLERANCE for c in chosen):
            chosen.append(centre)
            if len(chosen) == TOP_CANDIDATES:
                break
    return chosen


def _dp(
    times: Sequence[float], period: float, hit: float = HIT_RATE, rough: bool = False
) -> tuple[list[float], list[int], list[int], list[float], list[bool], float]:
    """Best chain ending at each drop for one period: scores, back links, periods spanned and
    their length, whether the drop restarted the chain; and the score of one missed slot."""
    n, cid, last = len(times), _clusters(times), times[-1]
    rate = max(1, cid[-1]) / (last - times[0])  # dropouts per second
    miss = math.log(1 - hit) + rate * 2 * TOLERANCE * period  # log((1 - h) / (1 - q))
    # A chain that starts late pays for the slots it missed since the first drop.
    score = [int((t - times[0]) / period) * miss for t in times]
    back, slots, span, reset = [-1] * n, [0] * n, [0.0] * n, [False] * n
    # A rough period (a candidate not yet refined by a chain) is off by up to TOLERANCE / 2, an
    # error that grows linearly with the skip: its windows do too.
    widths = [TOLERANCE * (m if rough else math.sqrt(m)) * period for m in range(MAX_SKIP + 1)]
    steps = [
        (m * period, w, math.log(hit / -math.expm1(-rate * 2 * w)) + (m - 1) * miss, m)
        for m, w in enumerate(widths)
        if m
    ]
    # An unrelated drop may restart the firmware's timer: a chain may go on from any later drop,
    # paying for the slots missed meanwhile and log(n) for the choice of that drop.
    best, best_at, restart = -math.inf, -1, math.log(n)
    for j, tj in enumerate(times):
        via = best + miss * tj / period - restart
        if best_at >= 0 and cid[best_at] != cid[j] and via > score[j]:
            score[j], back[j], reset[j] = via, best_at, True
            slots[j], span[j] = slots[best_at], span[best_at]
        sj = score[j]
        if sj - miss * tj / period > best:
            best, best_at = sj - miss * tj / period, j
        for offset, w, gain, m in steps:
            e = tj + offset
            if e - w > last:
                break
            k = bisect_left(times, e, j + 1)
            i = k if k < n and (k == j + 1 or times[k] - e <= e - times[k - 1]) else k - 1
            if i > j and -w <= times[i] - e <= w and sj + gain > score[i] and cid[i] != cid[j]:
                score[i], back[i], reset[i] = sj + gain, j, False
                slots[i], span[i] = slots[j] + m, span[j] + times[i] - tj
    return score, back, slots, span, reset, miss


def _chance(times: Sequence[float], chain: Sequence[int], reset: Sequence[bool], p: float) -> float:
    """Chance that dropouts placed at random within ±P/2 of each slot hit the chain's slots
    (restarts excluded, each a free choice among the drops)."""
    trials, q_sum, cid = 0, 0.0, _clusters(times)
    restarts = sum(reset[b] for b in chain[1:])
    for a, b in pairwise(chain):
        for s in range(1, 0 if reset[b] else max(1, round((times[b] - times[a]) / p)) + 1):
            e = times[a] + s * p
            lo, hi = bisect_left(times, e - p / 2), bisect_right(times, e + p / 2)
            count = cid[hi - 1] - cid[lo] + 1 if hi > lo else 0
            trials += 1
            q_sum += 1 - (1 - min(1.0, 2 * TOLERANCE * math.sqrt(s))) ** count
    # Hoeffding (1956): a sum of Bernoullis of mean probability p̄ has a tail no heavier than
    # Binomial(trials, p̄) above its mean.
    tail = _binomial_tail(len(chain) - 1 - restarts, trials, q_sum / trials) if trials else 1.0
    return tail * float(len(times)) ** restarts


def _fit(times: Sequence[float], period: float, refine: bool = True) -> _Fit | None:
    """The likeliest chain for one period, its hit rate fitted (and the period, if `refine`).
    A chain that stops early pays for the slots it misses until the last drop."""
    if len(times) < MIN_CHAIN or times[-1] <= times[0]:
        return None
    chain: list[int] = []
    hit = HIT_RATE
    for _ in range(4):  # the chain refines the period and hit rate, and they the chain
        score, back, slots, span, reset, miss = _dp(times, period, hit, refine and not chain)
        total = [s + int((times[-1] - times[i]) / period) * miss for i, s in enumerate(score)]
        end = max(range(len(times)), key=total.__getitem__)
        previous, chain = chain, [end]
        while back[chain[-1]] >= 0:
            chain.append(back[chain[-1]])
        chain.reverse()
        hits = len(chain) - 1 - sum(reset[i] for i in chain)
        if hits < MIN_CHAIN - 1:
            return None
        period = span[end] / slots[end] if refine else period
        hit = min(HIT_BOUNDS[1], max(HIT_BOUNDS[0], hits / slots[end]))
        if chain == previous:
            break
    chance = _chance(times, chain, reset, period)
    return _Fit(period, tuple(times[i] for i in chain), slots[end] + 1, chance, total[end])


def _search(times: Sequence[float], tests: int) -> tuple[_Fit, float] | None:
    """The likeliest significant period of `times` and its corrected chance."""
    if len(times) < MIN_CHAIN or times[-1] <= times[0]:
        return None
    p_max = (times[-1] - times[0]) / (MIN_CHAIN - 1)
    fits = [f for p in _candidates(times, p_max) if (f := _fit(times, p)) is not None]
    # Bonferroni: distinct periods (±TOLERANCE windows) in range × chain starts × windows.
    looks = max(1.0, math.log(p_max / MIN_PERIOD_S) / (2 * TOLERANCE)) * len(times) * tests
    significant = [f for f in fits if f.chance * looks < ALPHA]
    # The likeliest, not the least likely by chance: P/2 explains the same drops as P (every
    # other slot empty) just as far from chance, but its misses make it less likely.
    best = max(significant, key=lambda f: f.score, default=None)
    return (best, best.chance * looks) if best else None


def _split(times: Sequence[float], old: float, new: float) -> int:
    """Index of the first drop at the new period: the split where both chains fit best."""
    before = list(accumulate(_dp(times, old)[0], max, initial=0.0))  # best chain in times[:s]
    after = list(accumulate(_dp([-t for t in times[::-1]], new)[0], max, initial=0.0))[::-1]
    return max(range(1, len(times)), key=lambda s: before[s] + after[s])  # after: in times[s:]


def _replaces(part: Sequence[float], new: float, old: float) -> bool:
    """Whether the drops `part` are CHANGE_ODDS times likelier under period `new` than `old`."""
    if abs(new / old - 1) <= CHANGE_MIN:
        return False
    fit_new, fit_old = _fit(part, new, refine=False), _fit(part, old, refine=False)
    if fit_new is None:
        return False
    return fit_old is None or fit_new.score - fit_old.score > math.log(CHANGE_ODDS)


def find_period(drop_times: Sequence[float]) -> Period | None:
    """The dropout period of one speaker, or None when the drops show no significant period."""
    times = sorted(t for t in drop_times if math.isfinite(t))[-MAX_DROPS:]
    n = len(times)
    windows = [n >> k for k in range(1, 8) if n >> k >= MIN_RECENT]
    tests = 3 + len(windows) if windows else 1  # whole, recent windows, older part, new part
    whole = current = _search(times, tests)
    older: Sequence[float] = times[: n // 2] if windows else ()
    for size in windows:  # the largest recent window with another period, if any
        recent = _search(times[-size:], tests)
        if recent and (not whole or _replaces(times[-size:], recent[0].period, whole[0].period)):
            current, older = recent, times[:-size]
            break
    if current is None:
        return None
    (fit, chance), previous, changed_at = current, None, None
    before = _search(older, tests) or whole if len(older) >= MIN_CHAIN else None
    if before is not None and _replaces(older, old := before[0].period, fit.period):
        split = _split(times, old, fit.period)
        # A window across the change may fit a compromise (2P, P/2): the drops after the split,
        # searched on their own, give the new period.
        again = _search(times[split:], tests)
        if again is not None and abs(again[0].period / old - 1) > CHANGE_MIN:
            (fit, chance), split = again, _split(times, old, again[0].period)
        fit = _fit(times[split:], fit.period) or fit
        # The drop at the split may be the last at the old period (one old period after an
        # earlier drop), where the new timing starts: then the next one is the first new drop.
        k = bisect_left(times, times[split] - old * (1 + TOLERANCE))
        anchor = times[k] <= times[split] - old * (1 - TOLERANCE) and split + 1 < n
        first = times[split + 1] if anchor else times[split]
        previous, changed_at = old, min((t for t in fit.chain if t >= first), default=first)
    # Confidence on a log scale: 0 at ALPHA, 1 at ALPHA² or less.
    confidence = max(0.0, min(1.0, math.log(ALPHA / max(chance, 1e-300)) / -math.log(ALPHA)))
    return Period(fit.period, confidence, fit.chain, fit.slots, previous, changed_at)
