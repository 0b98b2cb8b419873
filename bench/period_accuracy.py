"""Accuracy of core.dropouts.period.find_period on seeded synthetic series with known truth.

`.venv/bin/python -m bench.period_accuracy [--series N] [--seed-base S] [--json FILE]`

Scenarios come from tests/dropouts/period_gen.py (periods log-uniform 30..3600 s, ±2 % uniform
or σ 1 % gaussian per-interval jitter, missed drops, unrelated extra drops, period changes, random
droppers). Targets (DESIGN §4.3 and the issue): period within 1 %, next drop within 5 % of P,
at most 1 false period in 20 random droppers, a period change is noticed.

The default seed base (1 000 000) is not the one the tests and the tuning used (0..~300): the
numbers printed are on series nobody looked at while writing core/dropouts/period.py.
Not a test: it prints numbers and PASS/FAIL against the targets, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.dropouts.period import Period, find_period
from tests.dropouts import period_gen as gen

#: Targets from the issue.
PERIOD_ERR_PCT = 1.0
NEXT_ERR_PCT = 5.0
FALSE_PER_20 = 1
#: How the change is judged noticed: previous period reported within this of the old one.
PREVIOUS_ERR_PCT = 3.0


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _timed(times: list[float]) -> tuple[Period | None, float]:
    start = time.perf_counter()
    found = find_period(times)
    return found, time.perf_counter() - start


def _periodic(make: Callable[[int], gen.Series], seeds: range) -> dict[str, Any]:
    detected, period_err, next_err, runtimes, ok = 0, [], [], [], 0
    change_reported = 0
    for seed in seeds:
        s = make(seed)
        found, took = _timed(s.times)
        runtimes.append(took)
        if found is None:
            continue
        assert s.period_s is not None and s.next_slot is not None
        detected += 1
        pe = abs(found.period_s - s.period_s) / s.period_s * 100
        ne = abs(found.next_expected(s.now) - s.next_slot) / s.period_s * 100
        period_err.append(pe)
        next_err.append(ne)
        ok += pe <= PERIOD_ERR_PCT and ne <= NEXT_ERR_PCT
        change_reported += getattr(found, "previous_s", None) is not None
    n = len(seeds)
    return {
        "series": n,
        "detected": detected / n,
        "on_target": ok / n,
        "period_err_pct": {"p50": _pct(period_err, 50), "p95": _pct(period_err, 95)}
        | {"max": max(period_err, default=math.nan)},
        "next_err_pct": {"p50": _pct(next_err, 50), "p95": _pct(next_err, 95)}
        | {"max": max(next_err, default=math.nan)},
        "spurious_change": change_reported / n,
        "runtime_ms": {"mean": sum(runtimes) / n * 1e3, "max": max(runtimes) * 1e3},
    }


def _changing(make: Callable[[int], gen.Series], seeds: range) -> dict[str, Any]:
    noticed, period_err, next_err, at_err, runtimes, detected = 0, [], [], [], [], 0
    for seed in seeds:
        s = make(seed)
        found, took = _timed(s.times)
        runtimes.append(took)
        if found is None:
            continue
        assert s.period_s and s.previous_s and s.next_slot and s.changed_at
        detected += 1
        pe = abs(found.period_s - s.period_s) / s.period_s * 100
        period_err.append(pe)
        next_err.append(abs(found.next_expected(s.now) - s.next_slot) / s.period_s * 100)
        previous = getattr(found, "previous_s", None)
        changed_at = getattr(found, "changed_at", None)
        if (
            previous is not None
            and changed_at is not None
            and pe <= PERIOD_ERR_PCT
            and abs(previous - s.previous_s) / s.previous_s * 100 <= PREVIOUS_ERR_PCT
        ):
            noticed += 1
            at_err.append(abs(changed_at - s.changed_at) / s.period_s)
    n = len(seeds)
    return {
        "series": n,
        "detected": detected / n,
        "noticed": noticed / n,
        "period_err_pct": {"p50": _pct(period_err, 50), "p95": _pct(period_err, 95)},
        "next_err_pct": {"p50": _pct(next_err, 50), "p95": _pct(next_err, 95)},
        "changed_at_err_periods": {"p50": _pct(at_err, 50), "p95": _pct(at_err, 95)},
        "runtime_ms": {"mean": sum(runtimes) / n * 1e3, "max": max(runtimes) * 1e3},
    }


def _random(make: Callable[[int], gen.Series], seeds: range) -> dict[str, Any]:
    flags, runtimes = [], []
    for seed in seeds:
        found, took = _timed(make(seed).times)
        runtimes.append(took)
        flags.append(found is not None)
    batches = [sum(flags[i : i + 20]) for i in range(0, len(flags) - 19, 20)]
    n = len(seeds)
    return {
        "series": n,
        "false_rate": sum(flags) / n,
        "per_20_mean": 20 * sum(flags) / n,
        "per_20_max": max(batches, default=0),
        "batches_over": sum(b > FALSE_PER_20 for b in batches),
        "batches": len(batches),
        "runtime_ms": {"mean": sum(runtimes) / n * 1e3, "max": max(runtimes) * 1e3},
    }


#: Change-notice latency: drops at the new period after which the change is noticed (60
#: periodic drops before it).
LATENCY_NEW_DROPS = (4, 6, 8, 12, 16, 24)
LATENCY_CASES = {"282->300": 300.0, "282->140": 140.0, "282->564": 564.0}


def _latency(seeds: range) -> dict[str, dict[int, float]]:
    """Share of series in which the change is noticed, by drops at the new period (10 % missed
    drops, 0.2 extra per period)."""
    out: dict[str, dict[int, float]] = {}
    for name, new in LATENCY_CASES.items():
        out[name] = {}
        for k in LATENCY_NEW_DROPS:
            noticed = 0
            for seed in seeds:
                s = gen.periodic(
                    seed, period=282.0, change_to=new, counts=(60, k), miss=0.1, extra=0.2
                )
                found = find_period(s.times)
                noticed += (
                    found is not None
                    and abs(found.period_s / new - 1) <= PERIOD_ERR_PCT / 100
                    and found.previous_s is not None
                    and abs(found.previous_s / 282.0 - 1) <= PREVIOUS_ERR_PCT / 100
                )
            out[name][k] = noticed / len(seeds)
    return out


def _huge() -> dict[str, float]:
    worst = 0.0
    for seed in range(5):
        for make in (gen.PERIODIC["any"], gen.RANDOM["random-poisson"]):
            series = make(seed)
            times = series.times
            while len(times) < 1000:  # stretch to 1000 drops, same statistics
                shift = times[-1] - times[0] + 1.0
                times = times + [t + shift for t in times]
            worst = max(worst, _timed(times[:1000])[1])
    return {"max_s_1000_drops": worst}


def run(series: int = 200, seed_base: int = 1_000_000) -> dict[str, Any]:
    seeds = range(seed_base, seed_base + series)
    return {
        "seeds": [seeds.start, seeds.stop],
        "periodic": {name: _periodic(make, seeds) for name, make in gen.PERIODIC.items()},
        "changing": {name: _changing(make, seeds) for name, make in gen.CHANGING.items()},
        "random": {name: _random(make, seeds) for name, make in gen.RANDOM.items()},
        "other": {name: _periodic(make, seeds) for name, make in gen.OTHER.items()},
        "latency": _latency(seeds[: max(1, len(seeds) // 4)]),
        "huge": _huge(),
    }


def _f(x: float, digits: int = 2) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _periodic_rows(table: dict[str, Any]) -> list[str]:
    rows = []
    for name, r in table.items():
        pe, ne, rt = r["period_err_pct"], r["next_err_pct"], r["runtime_ms"]
        rows.append(
            f"| {name} | {r['detected']:.1%} | {r['on_target']:.1%} "
            f"| {_f(pe['p50'], 3)} / {_f(pe['p95'], 3)} / {_f(pe['max'], 3)} "
            f"| {_f(ne['p50'])} / {_f(ne['p95'])} / {_f(ne['max'])} "
            f"| {r['spurious_change']:.1%} | {_f(rt['mean'], 1)} / {_f(rt['max'], 1)} |"
        )
    return rows


def report(res: dict[str, Any]) -> str:
    lines = [
        f"seeds {res['seeds'][0]}..{res['seeds'][1] - 1}; targets: period err <= "
        f"{PERIOD_ERR_PCT} %, next-drop err <= {NEXT_ERR_PCT} % of P, <= {FALSE_PER_20} false "
        "period per 20 random droppers, change noticed",
        "",
        "| periodic scenario | detected | on target | period err % p50/p95/max "
        "| next err % of P p50/p95/max | spurious change | ms/call mean/max |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += _periodic_rows(res["periodic"])
    lines += [
        "",
        "| change scenario | detected | noticed | new-period err % p50/p95 "
        "| next err % p50/p95 | changed_at err (periods) p50/p95 | ms/call mean/max |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res["changing"].items():
        pe, ne, ae, rt = (
            r["period_err_pct"],
            r["next_err_pct"],
            r["changed_at_err_periods"],
            r["runtime_ms"],
        )
        lines.append(
            f"| {name} | {r['detected']:.1%} | {r['noticed']:.1%} "
            f"| {_f(pe['p50'], 3)} / {_f(pe['p95'], 3)} | {_f(ne['p50'])} / {_f(ne['p95'])} "
            f"| {_f(ae['p50'])} / {_f(ae['p95'])} | {_f(rt['mean'], 1)} / {_f(rt['max'], 1)} |"
        )
    lines += [
        "",
        "| random dropper | false-period rate | per 20: mean / worst batch "
        "| batches of 20 over target | ms/call mean/max | result |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["random"].items():
        rt = r["runtime_ms"]
        ok = r["per_20_mean"] <= FALSE_PER_20
        lines.append(
            f"| {name} | {r['false_rate']:.1%} | {_f(r['per_20_mean'])} / {r['per_20_max']} "
            f"| {r['batches_over']} of {r['batches']} | {_f(rt['mean'], 1)} / {_f(rt['max'], 1)} "
            f"| {'PASS' if ok else 'FAIL'} |"
        )
    lat = res["latency"]
    lines += [
        "",
        "Change noticed (period within 1 %, previous within 3 %) after 60 periodic drops at 282 s",
        "and k at the new period (10 % missed, 0.2 extra per period, on top), share of series:",
        "",
        "| change | " + " | ".join(f"k={k}" for k in LATENCY_NEW_DROPS) + " |",
        "|---|" + "---|" * len(LATENCY_NEW_DROPS),
    ]
    for name, by_k in lat.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.0%}" for v in by_k.values()) + " |")
    lines += [
        "",
        "Outside the spec's model (information, no target): lattice = jitter around fixed slots;",
        "reset = unrelated drops restart the firmware timer; sim = the demo's exact 282 s.",
        "",
        "| scenario | detected | on target | period err % p50/p95/max "
        "| next err % of P p50/p95/max | spurious change | ms/call mean/max |",
        "|---|---|---|---|---|---|---|",
        *_periodic_rows(res["other"]),
    ]
    huge = res["huge"]["max_s_1000_drops"]
    lines += ["", f"1000-drop series: worst {huge * 1e3:.0f} ms per call (target < 1000 ms)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.period_accuracy", description=__doc__)
    parser.add_argument("--series", type=int, default=200, help="seeded series per scenario")
    parser.add_argument("--seed-base", type=int, default=1_000_000, help="first seed")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers to FILE")
    args = parser.parse_args(argv)
    started = time.monotonic()
    res = run(args.series, args.seed_base)
    print("# find_period accuracy\n")
    print(report(res))
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
