"""core.dropouts.period.find_period against seeded series with known truth
(tests/dropouts/period_gen.py).

Targets (issue, DESIGN §4.3): period within 1 %, next drop within 5 % of P, robust to ±2 %
jitter, missed drops and unrelated extra drops, at most 1 false period in 20 random droppers,
a period change noticed.

Some targets cannot hold for *every* series, whatever the algorithm: the period of a renewal
process with ±2 % uniform jitter is known from k intervals to σ = 1.15 %/√k, so with 5 drops
(k = 4) about 8 % of series are more than 1 % off; and when the last observed drop is k slots
back (missed drops) the true next drop has wandered σ = 1.15 %·√k of P from any prediction.
So the table has two kinds of rows: scenarios where the targets hold per series (tested per
seed) and hard scenarios where a share of the series must meet them (tested over many seeds,
the share stated with the reason). Minimum series: 5 drops (a chain of 4 cannot beat chance
after counting the periods and starts tried: 0.06³ × ≈100 × 4 > 1 %), reliably 8.
"""

from __future__ import annotations

import math
import random
import time

import pytest

from core.dropouts.period import MIN_PERIOD_S, Period, find_period
from tests.dropouts import period_gen as gen

PERIOD_TOL = 0.01  # period error, fraction of P
NEXT_TOL = 0.05  # next-drop error, fraction of P


def _errors(series: gen.Series, found: Period) -> tuple[float, float]:
    assert series.period_s is not None and series.next_slot is not None
    period_err = abs(found.period_s - series.period_s) / series.period_s
    next_err = abs(found.next_expected(series.now) - series.next_slot) / series.period_s
    return period_err, next_err


# -- targets per series ---------------------------------------------------------------------
PER_SERIES = {
    "clean-n20": 12,
    "clean-n200": 3,
    "gauss1%-n20": 12,
    "gauss1%-n200": 3,
    "miss20%-n20": 12,
    "extra0.5-n20": 12,
    "extra1-n40": 8,
    "extra1-n200": 3,
    "gauss1%+miss20%+extra0.5-n40": 8,
    "282s-known": 12,
}


@pytest.mark.parametrize(
    ("scenario", "seed"),
    [(name, seed) for name, count in PER_SERIES.items() for seed in range(count)],
)
def test_period_and_next_drop(scenario: str, seed: int) -> None:
    series = gen.PERIODIC[scenario](seed)
    found = find_period(series.times)
    assert found is not None, f"no period found in {len(series.times)} drops"
    period_err, next_err = _errors(series, found)
    assert period_err <= PERIOD_TOL, f"period {found.period_s:.2f} vs {series.period_s:.2f}"
    assert next_err <= NEXT_TOL, f"next drop off by {next_err:.1%} of P"
    assert found.previous_s is None and found.changed_at is None, "no change happened"
    assert 0.0 <= found.confidence <= 1.0
    assert found.chain == tuple(sorted(found.chain)) and len(found.chain) <= found.slots


# -- targets over many series (hard scenarios) ------------------------------------------------
#: scenario: (seeds, least share detected, least share of all series meeting both targets).
#: n5/n8: the period of 4 (7) intervals of ±2 % jitter is > 1 % off in ≈ 8 % (≈ 1.5 %) of
#: series. miss40%: a prediction k slots after the last observed drop carries the true process'
#: own random walk, σ = 1.15 %·√k; at 40 % missed drops k ≥ 4 happens. any: all of it at once.
AGGREGATE = {
    "clean-n5": (40, 0.85, 0.80),
    "clean-n8": (40, 0.97, 0.92),
    "miss40%-n30": (40, 0.97, 0.92),
    "miss40%-n200": (8, 1.0, 0.87),
    "miss40%+extra1-n60": (30, 0.90, 0.85),
    "any": (15, 0.93, 0.86),
}


@pytest.mark.parametrize("scenario", list(AGGREGATE))
def test_targets_over_many_series(scenario: str) -> None:
    seeds, least_detected, least_on_target = AGGREGATE[scenario]
    detected = on_target = 0
    for seed in range(100, 100 + seeds):
        series = gen.PERIODIC[scenario](seed)
        found = find_period(series.times)
        if found is None:
            continue
        detected += 1
        period_err, next_err = _errors(series, found)
        on_target += period_err <= PERIOD_TOL and next_err <= NEXT_TOL
        assert period_err <= 0.03, f"seed {seed}: wrong period {found.period_s:.1f}"
    assert detected / seeds >= least_detected
    assert on_target / seeds >= least_on_target


# -- no period from random drops ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "batch"), [(name, batch) for name in gen.RANDOM for batch in range(2)]
)
def test_random_droppers_get_at_most_one_false_period_in_20(scenario: str, batch: int) -> None:
    make = gen.RANDOM[scenario]
    false = [seed for seed in range(batch * 20, batch * 20 + 20) if find_period(make(seed).times)]
    assert len(false) <= 1, f"false periods for seeds {false}"


@pytest.mark.parametrize("seed", range(6))
def test_flapping_makes_no_period(seed: int) -> None:
    found = find_period(gen.flapping_only(seed).times)
    assert found is None


# -- minimum series ---------------------------------------------------------------------------
def test_four_drops_are_never_enough() -> None:
    assert find_period([1000.0 + 282.0 * k for k in range(4)]) is None


def test_five_exact_drops_are_enough() -> None:
    found = find_period([1000.0 + 282.0 * k for k in range(5)])
    assert found is not None and found.period_s == pytest.approx(282.0)


# -- period changes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "seed"), [(name, seed) for name in gen.CHANGING for seed in range(5)]
)
def test_period_change_is_noticed(scenario: str, seed: int) -> None:
    series = gen.CHANGING[scenario](seed)
    found = find_period(series.times)
    assert found is not None
    assert series.previous_s and series.changed_at and series.period_s
    period_err, next_err = _errors(series, found)
    assert period_err <= PERIOD_TOL, f"reports {found.period_s:.1f}, now {series.period_s}"
    assert next_err <= NEXT_TOL
    assert found.previous_s == pytest.approx(series.previous_s, rel=0.03)
    assert found.changed_at is not None
    assert abs(found.changed_at - series.changed_at) <= 1.1 * series.period_s


@pytest.mark.parametrize("seed", range(5))
def test_change_is_noticed_after_a_dozen_new_drops(seed: int) -> None:
    """60 drops at 282 s, then 12 at 300 s (a firmware update): the recent quarter of the
    drops is analysed on its own, so the change shows long before it dominates the history."""
    series = gen.periodic(seed, period=282.0, change_to=300.0, n=72, change_after=60 / 72)
    found = find_period(series.times)
    assert found is not None and found.period_s == pytest.approx(300.0, rel=PERIOD_TOL)
    assert found.previous_s == pytest.approx(282.0, rel=0.03)


# -- next_expected ------------------------------------------------------------------------------
def test_next_expected_skips_slots_that_passed_and_counts_from_the_chain() -> None:
    found = find_period([1000.0 + 300.0 * k for k in range(10)])
    assert found is not None
    last = found.last
    assert found.next_expected(last + 10.0) == pytest.approx(last + 300.0)
    assert found.next_expected(last + 10 * 300.0 + 150.0) == pytest.approx(last + 11 * 300.0)
    # Just after a slot that has not shown yet (jitter): it is still due.
    assert found.next_expected(last + 301.0) == pytest.approx(last + 300.0)
    # Well after it: missed, the next one.
    assert found.next_expected(last + 330.0) == pytest.approx(last + 600.0)
    # A moment inside the chain: its next drop.
    assert found.next_expected(1000.0 + 300.0 * 3 + 1.0) == pytest.approx(1000.0 + 300.0 * 4)


def test_extra_drops_after_the_last_periodic_one_do_not_move_the_prediction() -> None:
    times = [1000.0 + 282.0 * k for k in range(12)]
    last = times[-1]
    found = find_period([*times, last + 100.0, last + 170.0])
    assert found is not None and found.last == last
    assert found.next_expected(last + 200.0) == pytest.approx(last + 282.0, rel=1e-3)


def test_missed_drops_at_the_end() -> None:
    rng = random.Random(7)
    times = [1000.0 + 282.0 * k * (1 + rng.uniform(-0.002, 0.002)) for k in range(20)]
    found = find_period([*times, times[-1] + 4 * 282.0])  # three missed, then one
    assert found is not None and found.last == times[-1] + 4 * 282.0


def test_an_unrelated_drop_that_restarts_the_timer() -> None:
    """A reconnect after an unrelated drop restarts the firmware's timer: the chain goes on
    from that drop, so the prediction follows the new phase."""
    before = [1000.0 + 282.0 * k for k in range(10)]
    reset = before[-1] + 100.0
    after = [reset + 282.0 * k for k in range(1, 9)]
    found = find_period([*before, reset, *after])
    assert found is not None and found.period_s == pytest.approx(282.0, rel=1e-3)
    assert reset in found.chain and found.last == after[-1]
    assert found.next_expected(after[-1] + 10.0) == pytest.approx(after[-1] + 282.0, rel=1e-4)


def test_a_long_pause_then_the_same_period_in_another_phase() -> None:
    first = [1000.0 + 282.0 * k for k in range(10)]
    second = [first[-1] + 40 * 282.0 + 97.0 + 282.0 * k for k in range(10)]
    found = find_period([*first, *second])
    assert found is not None and found.period_s == pytest.approx(282.0, rel=1e-3)
    assert found.last == second[-1] and found.previous_s is None


# -- edge cases ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "times",
    [[], [5.0], [5.0, 300.0], [5.0, 300.0, 600.0], [100.0] * 10, [math.nan, math.inf] * 5],
)
def test_too_few_or_degenerate_drops_give_no_period(times: list[float]) -> None:
    assert find_period(times) is None


def test_unsorted_input_gives_the_same_answer() -> None:
    series = gen.PERIODIC["extra0.5-n20"](3)
    shuffled = list(series.times)
    random.Random(1).shuffle(shuffled)
    assert find_period(shuffled) == find_period(series.times)


def test_non_finite_times_are_ignored() -> None:
    series = gen.PERIODIC["clean-n20"](4)
    assert find_period([*series.times, math.nan, math.inf]) == find_period(series.times)


@pytest.mark.parametrize("seed", range(4))
def test_drops_closer_than_min_period_are_one_dropout(seed: int) -> None:
    """Every periodic drop comes with up to 3 flaps within 4 s: the period is still found."""
    series = gen.with_flaps(gen.PERIODIC["282s-known"](seed), seed)
    found = find_period(series.times)
    assert found is not None
    assert found.period_s == pytest.approx(282.0, rel=PERIOD_TOL)
    assert found.period_s >= MIN_PERIOD_S


def test_no_period_below_min_period() -> None:
    assert find_period([1000.0 + 2.0 * k for k in range(100)]) is None


@pytest.mark.parametrize("make", [gen.PERIODIC["any"], gen.RANDOM["random-poisson"]])
def test_a_thousand_drops_take_under_a_second(make: gen.Generator) -> None:
    times = list(make(11).times)
    while len(times) < 1000:
        shift = times[-1] - times[0] + 300.0
        times += [t + shift for t in times]
    started = time.perf_counter()
    find_period(times[:1000])
    assert time.perf_counter() - started < 1.0
