"""Seeded drop-time series with known truth, for testing and measuring core.dropouts.period.

The periodic dropper is a renewal process: each true drop comes P·(1 + e) after the previous
true drop (e uniform in ±2 %, or gaussian with σ = 1 %). A true drop is *missed* (the speaker
was idle, nothing was logged) with probability `miss`; the process goes on from the missed drop
all the same (the firmware timer keeps running). Unrelated *extra* drops are a Poisson process
at `extra` per period. A series holds every observed drop up to `now`, which is the n-th
observed drop plus a random fraction of P.

Truth of the next drop: `next_slot` is the first true drop of the process after `now`, whether
it will be observed or not (a missed drop is still the moment the speaker is due; nobody can
predict that it will be missed). `next_observed` is the first one that really shows up.

Random droppers (no period): Poisson, bursty (clusters of drops at Poisson times) and uniformly
random times. Every generator takes a seed and is deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Series:
    """One drop-time series and the truth about it."""

    name: str
    seed: int
    times: list[float]
    now: float
    #: The current period (None for a random dropper).
    period_s: float | None = None
    #: First true drop after `now` (observed or missed); None for a random dropper.
    next_slot: float | None = None
    #: First true drop after `now` that is observed.
    next_observed: float | None = None
    #: Period before a change, and the time of the first drop at the new period.
    previous_s: float | None = None
    changed_at: float | None = None
    params: dict[str, float] = field(default_factory=dict)


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _jitter(rng: random.Random, kind: str, size: float) -> float:
    if kind == "uniform":
        return rng.uniform(-size, size)
    if kind == "gauss":
        return rng.gauss(0.0, size)
    raise ValueError(kind)


def _step(rng: random.Random, t: float, period: float, jitter: float, kind: str) -> float:
    return t + period * (1 + _jitter(rng, kind, jitter))


def _regimes(
    rng: random.Random,
    regimes: list[tuple[float, int]],
    *,
    jitter: float,
    jitter_kind: str,
    miss: float,
    t0: float,
) -> tuple[list[float], list[bool], list[int]]:
    """True drops of consecutive regimes (period, observed drops wanted).

    The last regime runs on for RUN_ON more drops: the truth after `now` comes from there.
    Returns (true drop times, observed flags, index of the first true drop of each regime).
    """
    slots: list[float] = []
    seen: list[bool] = []
    starts: list[int] = []
    t = t0
    for k, (period, wanted) in enumerate(regimes):
        starts.append(len(slots))
        got = 0
        while got < wanted:
            t = _step(rng, t, period, jitter, jitter_kind)
            slots.append(t)
            seen.append(rng.random() >= miss)
            got += seen[-1]
        if k == len(regimes) - 1:
            for _ in range(RUN_ON):
                t = _step(rng, t, period, jitter, jitter_kind)
                slots.append(t)
                seen.append(rng.random() >= miss)
    return slots, seen, starts


#: True drops generated after the wanted ones (extras fewer than expected, truth after `now`).
RUN_ON = 80


def _poisson(rng: random.Random, rate: float, start: float, end: float) -> list[float]:
    out: list[float] = []
    if rate <= 0:
        return out
    t = start
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        out.append(t)


def periodic(
    seed: int,
    *,
    period: float | None = None,
    n: int | None = None,
    jitter: float = 0.02,
    jitter_kind: str = "uniform",
    miss: float = 0.0,
    extra: float = 0.0,
    change_to: float | None = None,
    change_after: float = 0.5,
    counts: tuple[int, int] | None = None,
    name: str = "periodic",
) -> Series:
    """A periodic dropper; with `change_to`, the period changes after `change_after` of the drops.

    `period` defaults to log-uniform 30..3600 s, `n` (observed drops, extras included, before
    `now`) to 5..200. `extra` is the rate of unrelated drops per period (Poisson). With a change,
    `counts` fixes the observed periodic drops of each period (extras come on top); the series
    ends with the last of the new period's.
    """
    rng = random.Random(seed)
    p = period if period is not None else log_uniform(rng, 30.0, 3600.0)
    count = n if n is not None else rng.randint(5, 200)
    t0 = rng.uniform(1.7e9, 1.8e9)
    # Extras take part of the count: aim the periodic part at roughly its share.
    share = 1.0 / (1.0 + extra / max(1e-9, 1.0 - miss))
    periodic_wanted = max(1, round(count * share))
    if change_to is None:
        regimes = [(p, periodic_wanted)]
    elif counts is None:
        first = max(1, round(periodic_wanted * change_after))
        regimes = [(p, first), (change_to, periodic_wanted - first)]
    else:
        regimes = [(p, counts[0]), (change_to, counts[1])]
    slots, seen, starts = _regimes(
        rng, regimes, jitter=jitter, jitter_kind=jitter_kind, miss=miss, t0=t0
    )
    current = regimes[-1][0]
    extras = _poisson(rng, extra / min(p, current), t0, slots[-1])
    observed = sorted([t for t, s in zip(slots, seen, strict=True) if s] + extras)
    observed = [t for t in observed if t > t0]
    last = observed[min(count, len(observed)) - 1]
    if counts is not None:
        new_seen = [t for t, s in zip(slots[starts[1] :], seen[starts[1] :], strict=True) if s]
        last = new_seen[counts[1] - 1]
    now = last + rng.random() * current
    times = [t for t in observed if t <= now]
    next_slot = next(t for t in slots if t > now)
    next_observed = next(t for t, s in zip(slots, seen, strict=True) if s and t > now)
    previous = changed = None
    if change_to is not None:
        previous = p
        changed = next(t for t, s in zip(slots[starts[1] :], seen[starts[1] :], strict=True) if s)
    return Series(
        name,
        seed,
        times,
        now,
        current,
        next_slot,
        next_observed,
        previous,
        changed,
        {"period": p, "jitter": jitter, "miss": miss, "extra": extra},
    )


def other_model(
    seed: int,
    *,
    model: str,
    n: int = 40,
    jitter: float = 0.02,
    miss: float = 0.1,
    extra: float = 0.3,
) -> Series:
    """Periodic droppers outside the spec's model, for information (not targets):
    `lattice`: drops at t0 + k·P ± jitter·P (the jitter does not add up, intervals vary by up to
    ±2·jitter); `reset`: every drop, unrelated ones too, restarts the timer (the next periodic
    drop comes P after an unrelated one)."""
    rng = random.Random(seed)
    p = log_uniform(rng, 30.0, 3600.0)
    t0 = t = rng.uniform(1.7e9, 1.8e9)
    slots: list[float] = []
    observed: list[float] = []
    next_extra = t0 + rng.expovariate(extra / p) if extra > 0 else math.inf
    while len(observed) < n + RUN_ON:
        if model == "lattice":
            s = t0 + (len(slots) + 1) * p + p * rng.uniform(-jitter, jitter)
        else:
            s = t + p * (1 + rng.uniform(-jitter, jitter))
        while next_extra < s:
            observed.append(next_extra)
            if model == "reset":
                s = next_extra + p * (1 + rng.uniform(-jitter, jitter))
            next_extra += rng.expovariate(extra / p)
        slots.append(s)
        t = s
        if rng.random() >= miss:
            observed.append(s)
    observed.sort()
    now = observed[n - 1] + rng.random() * p
    times = [x for x in observed if x <= now]
    next_slot = next(x for x in slots if x > now)
    params = {"period": p, "jitter": jitter, "miss": miss, "extra": extra}
    return Series(model, seed, times, now, p, next_slot, next_slot, params=params)


def poisson_dropper(seed: int, *, n: int | None = None, name: str = "random-poisson") -> Series:
    """Drops at random: exponential gaps with a mean of 30..3600 s."""
    rng = random.Random(seed)
    count = n if n is not None else rng.randint(5, 200)
    mean = log_uniform(rng, 30.0, 3600.0)
    t = rng.uniform(1.7e9, 1.8e9)
    times = []
    for _ in range(count):
        t += rng.expovariate(1 / mean)
        times.append(t)
    return Series(name, seed, times, t + rng.random() * mean, params={"mean_gap": mean})


def bursty_dropper(seed: int, *, n: int | None = None, name: str = "random-bursty") -> Series:
    """Clusters of drops: bursts at Poisson times (mean gap 10 min..6 h), each 1..~8 drops
    with exponential gaps of mean 5..120 s inside (a flaky link reconnecting and failing)."""
    rng = random.Random(seed)
    count = n if n is not None else rng.randint(5, 200)
    burst_gap = log_uniform(rng, 600.0, 6 * 3600.0)
    inner = log_uniform(rng, 5.0, 120.0)
    size = rng.uniform(2.0, 8.0)
    t = rng.uniform(1.7e9, 1.8e9)
    times: list[float] = []
    while len(times) < count:
        t += rng.expovariate(1 / burst_gap)
        k = 1 + min(int(rng.expovariate(1 / (size - 1))), 40)
        u = t
        for _ in range(k):
            times.append(u)
            u += rng.expovariate(1 / inner)
        t = max(t, u)
    times = sorted(times)[:count]
    params = {"burst_gap": burst_gap, "inner": inner, "size": size}
    return Series(name, seed, times, times[-1] + rng.random() * burst_gap, params=params)


def uniform_dropper(seed: int, *, n: int | None = None, name: str = "random-uniform") -> Series:
    """n drops at uniformly random times over 1 h..30 days."""
    rng = random.Random(seed)
    count = n if n is not None else rng.randint(5, 200)
    span = log_uniform(rng, 3600.0, 30 * 86400.0)
    t0 = rng.uniform(1.7e9, 1.8e9)
    times = sorted(t0 + rng.random() * span for _ in range(count))
    return Series(name, seed, times, t0 + span, params={"span": span})


def with_flaps(series: Series, seed: int, *, max_extra: int = 3, within_s: float = 4.0) -> Series:
    """The same series with every drop followed by 0..max_extra flaps within `within_s` s (a
    reconnect that fails again at once): still one dropout each."""
    rng = random.Random(seed ^ 0xF1A9)
    times: list[float] = []
    for t in series.times:
        times.append(t)
        u = t
        for _ in range(rng.randint(0, max_extra)):
            u += rng.uniform(0.2, within_s)
            times.append(u)
    return Series(
        series.name + "+flaps",
        seed,
        times,
        series.now,
        series.period_s,
        series.next_slot,
        series.next_observed,
        series.previous_s,
        series.changed_at,
        series.params,
    )


def flapping_only(seed: int, *, n: int = 120, spacing_s: float = 2.0) -> Series:
    """Bursts of regular flaps (a drop every `spacing_s` s, faster than MIN_PERIOD_S) at random
    times: no period (a 2 s flap is not a dropout period, nor are its multiples)."""
    rng = random.Random(seed)
    t = rng.uniform(1.7e9, 1.8e9)
    times: list[float] = []
    while len(times) < n:
        t += rng.expovariate(1 / 1800)
        for k in range(rng.randint(5, 40)):
            times.append(t + k * spacing_s)
        t = times[-1]
    return Series("flapping", seed, times[:n], times[n - 1] + 60.0)


Generator = Callable[[int], Series]

#: Periodic scenarios: name -> generator. Periods 30..3600 s, log-uniform.
PERIODIC: dict[str, Generator] = {
    "clean-n5": lambda s: periodic(s, n=5, name="clean-n5"),
    "clean-n8": lambda s: periodic(s, n=8, name="clean-n8"),
    "clean-n20": lambda s: periodic(s, n=20, name="clean-n20"),
    "clean-n200": lambda s: periodic(s, n=200, name="clean-n200"),
    "gauss1%-n20": lambda s: periodic(
        s, n=20, jitter=0.01, jitter_kind="gauss", name="gauss1%-n20"
    ),
    "gauss1%-n200": lambda s: periodic(
        s, n=200, jitter=0.01, jitter_kind="gauss", name="gauss1%-n200"
    ),
    "miss20%-n20": lambda s: periodic(s, n=20, miss=0.2, name="miss20%-n20"),
    "miss40%-n30": lambda s: periodic(s, n=30, miss=0.4, name="miss40%-n30"),
    "miss40%-n200": lambda s: periodic(s, n=200, miss=0.4, name="miss40%-n200"),
    "extra0.5-n20": lambda s: periodic(s, n=20, extra=0.5, name="extra0.5-n20"),
    "extra1-n40": lambda s: periodic(s, n=40, extra=1.0, name="extra1-n40"),
    "extra1-n200": lambda s: periodic(s, n=200, extra=1.0, name="extra1-n200"),
    "miss40%+extra1-n60": lambda s: periodic(
        s, n=60, miss=0.4, extra=1.0, name="miss40%+extra1-n60"
    ),
    "gauss1%+miss20%+extra0.5-n40": lambda s: periodic(
        s,
        n=40,
        jitter=0.01,
        jitter_kind="gauss",
        miss=0.2,
        extra=0.5,
        name="gauss1%+miss20%+extra0.5-n40",
    ),
    "any": lambda s: periodic(
        s,
        miss=random.Random(s ^ 0x5EED).uniform(0.0, 0.4),
        extra=random.Random(s ^ 0xE27A).uniform(0.0, 1.0),
        n=random.Random(s ^ 0xC0DE).randint(30, 200),
        name="any",
    ),
    "282s-known": lambda s: periodic(s, period=282.0, n=30, miss=0.1, extra=0.2, name="282s-known"),
}

#: Period changes half-way.
CHANGING: dict[str, Generator] = {
    "282->300": lambda s: periodic(s, period=282.0, change_to=300.0, n=40, name="282->300"),
    "282->140": lambda s: periodic(s, period=282.0, change_to=140.0, n=60, name="282->140"),
    "282->300-noisy": lambda s: periodic(
        s, period=282.0, change_to=300.0, n=60, miss=0.2, extra=0.3, name="282->300-noisy"
    ),
    "282->564": lambda s: periodic(s, period=282.0, change_to=564.0, n=40, name="282->564"),
    "600->282-late": lambda s: periodic(
        s, period=600.0, change_to=282.0, n=80, change_after=0.8, name="600->282-late"
    ),
}

#: Outside the spec's model (for information, not targets).
OTHER: dict[str, Generator] = {
    "lattice±2%-n40": lambda s: other_model(s, model="lattice"),
    "reset-by-extras-n40": lambda s: other_model(s, model="reset"),
    "sim-282s-exact-n5": lambda s: periodic(s, period=282.0, n=5, jitter=0.0, name="sim-exact"),
}

#: Random droppers: no period must be reported.
RANDOM: dict[str, Generator] = {
    "random-poisson": lambda s: poisson_dropper(s),
    "random-bursty": lambda s: bursty_dropper(s),
    "random-uniform": lambda s: uniform_dropper(s),
    "random-poisson-n200": lambda s: poisson_dropper(s, n=200, name="random-poisson-n200"),
    "random-bursty-n200": lambda s: bursty_dropper(s, n=200, name="random-bursty-n200"),
    "flapping": lambda s: flapping_only(s),
}
