"""Issue 11 §4: probes and gaps on recordings made the way an outside tester makes them.

`.venv/bin/python -m bench probe-field` (PROBE_SEED=N repeats a run), or
`.venv/bin/python -m bench.probe_field [--scenes N] [--gap-scenes M] [--seed S] [--runs R]`.

Scenes come from tests/probe/scenes.py and gap_scenes.py (plain numpy, not the product's room
model): 1-8 speakers at -10..0 dB, 0-40 dB SNR of the whole probe mix against pink noise,
babble, music or music with pink noise, peak -36..-6 dBFS in 16 bits, clock skew ±60 ppm,
reflections louder than the direct path in half the scenes, a diffuse tail, 2-10 s recordings
and every tenth one 60 s. Gap scenes: tones of 200-5000 Hz (3 in 4) or music with 20-500 ms
holes, 3-10 ms dips, lead silence and early stops, pink noise or babble at 15-40 dB, peak
-36..-6 dBFS. A fresh seed every run unless --seed or PROBE_SEED pins it. Peers in the same
run: the textbook arrival (cross-correlation argmax + parabola) and the fixed gap rule (2 ms
frames 25 dB under the median). Not a test: it prints tables and PASS/FAIL against the
targets, and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fmt, machine, percentile, verdict
from core.probe.analysis import analyze, textbook_arrivals
from core.probe.room import random_room, render
from core.probe.signals import design_probes
from tests.probe.gap_scenes import gap_scene, score_gaps
from tests.probe.scenes import RATE, arrival_scene, fresh_seed

#: Targets of issue 11 §4.
MAX_OFF_MS, P95_MS, DETECT_PCT, REJECT_PCT = 0.25, 0.25, 99.0, 95.0
HOLES_PCT, FALSE_PER_10 = 95.0, 1.0
TIME_RATIO_3S = 1.5


def _fixed_rule_gaps(recording: np.ndarray) -> list[tuple[float, float]]:
    """The peer: 2 ms frames every 0.5 ms, silent 25 dB under the median of the frames within
    40 dB of the loudest, >= 20 ms, between sounding frames (the method before issue 11)."""
    frame, hop = 96, 24
    energy = np.concatenate([[0.0], np.cumsum(recording**2)])
    starts = np.arange(0, len(recording) - frame + 1, hop)
    levels = 10 * np.log10((energy[starts + frame] - energy[starts]) / frame + 1e-30)
    programme = float(np.median(levels[levels >= levels.max() - 40]))
    silent = levels < programme - 25
    sounding = np.flatnonzero(~silent)
    if sounding.size == 0:
        return []
    inner = silent[sounding[0] : sounding[-1] + 1].astype(np.int8)
    edges = np.diff(np.concatenate([[0], inner, [0]]))
    out = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        start, end = (sounding[0] + a) * hop, (sounding[0] + b - 1) * hop + frame
        if (end - start) / RATE >= 0.0195:
            out.append((start / RATE * 1000, (end - start) / RATE * 1000))
    return out


def _arrivals(scenes: int, seed: int) -> dict[str, list]:
    rows: dict[str, list] = {"present": [], "absent": []}
    for k in range(scenes):
        rng = np.random.default_rng(seed + k)
        count = int(rng.integers(1, 9))
        duration = 60.0 if k % 10 == 9 else None
        probes = design_probes(count, RATE)
        scene = arrival_scene(seed + k, probes, duration_s=duration)
        found = analyze(scene.recording, RATE, probes)
        book = textbook_arrivals(scene.recording, RATE, probes)
        for index, (truth, arrival, tb) in enumerate(
            zip(scene.speakers, found.arrivals, book, strict=True), start=1
        ):
            warned = any(
                w.startswith(f"speaker {index}: ") and "could not be confirmed" in w
                for w in found.warnings
            )
            if not truth.present:
                rows["absent"].append((scene.snr_db, arrival.detected))
                continue
            ours = arrival.arrival_ms - truth.arrival_ms if arrival.arrival_ms is not None else None
            rows["present"].append(
                (scene.snr_db, ours, tb - truth.arrival_ms, scene.describe(), warned)
            )
    return rows


def _gaps(scenes: int, seed: int) -> dict[str, dict[str, int]]:
    out = {
        kind: {"holes": 0, "ours": 0, "ours_false": 0, "peer": 0, "peer_false": 0, "n": 0}
        for kind in ("tone", "music")
    }
    from core.probe.gaps import find_gaps

    for k in range(scenes):
        scene = gap_scene(seed + 500_000 + k)
        kind = "music" if scene.programme == "music" else "tone"
        cell = out[kind]
        ours = [(g.start_ms, g.duration_ms) for g in find_gaps(scene.recording, RATE)]
        hit, false = score_gaps(scene, ours)
        peer_hit, peer_false = score_gaps(scene, _fixed_rule_gaps(scene.recording))
        cell["n"] += 1
        cell["holes"] += len(scene.holes)
        cell["ours"] += hit
        cell["ours_false"] += false
        cell["peer"] += peer_hit
        cell["peer_false"] += peer_false
    return out


def _timing(duration_s: float, runs: int) -> tuple[float, float]:
    """Median seconds of ours and of the textbook on one room (6 speakers, heavy reverb, 10 dB),
    the two run in turn so that the shared machine's load drifts over both alike."""
    probes = design_probes(6, RATE)
    rng = np.random.default_rng(7)
    room = random_room(rng, 6, snr_db=10.0, reverb="heavy", duration_s=duration_s)
    recording = render(room, probes, rng)
    ours, book = [], []
    for _ in range(runs):
        start = time.perf_counter()
        analyze(recording, RATE, probes)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        textbook_arrivals(recording, RATE, probes)
        book.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(book)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / max(1, whole)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probe-field", description=__doc__)
    parser.add_argument("--scenes", type=int, default=200, help="arrival scenes")
    parser.add_argument("--gap-scenes", type=int, default=300, help="gap scenes")
    parser.add_argument("--seed", type=int, default=None, help="default: fresh (PROBE_SEED)")
    parser.add_argument("--runs", type=int, default=11, help="timing runs (median)")
    args = parser.parse_args(list(argv or []))
    seed = args.seed if args.seed is not None else fresh_seed()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine().items()))
    print(f"seed {seed} (repeat with --seed {seed})")
    started = time.perf_counter()
    rows = _arrivals(args.scenes, seed)
    present, absent = rows["present"], rows["absent"]
    print(
        f"\narrivals: {args.scenes} scenes, {len(present)} present and {len(absent)} absent "
        f"speakers ({time.perf_counter() - started:.0f} s); errors in ms vs the truth"
    )
    print(
        f"{'SNR dB':>8} {'n':>5} {'detect %':>8} {'p50 ours':>9} {'p95 ours':>9} "
        f"{'max ours':>9} {'>0.25':>6} {'p95 book':>9} {'>0.25 bk':>8}"
    )
    results = {}
    for lo, hi in ((0, 10), (10, 20), (20, 30), (30, 41), (0, 41), (10, 41)):
        cell = [r for r in present if lo <= r[0] < hi]
        ours = [abs(r[1]) for r in cell if r[1] is not None]
        book = [abs(r[2]) for r in cell]
        off = sum(e > MAX_OFF_MS for e in ours)
        results[(lo, hi)] = (cell, ours, book, off)
        print(
            f"{lo:>3}-{min(hi, 40):<4} {len(cell):>5} {_pct(len(ours), len(cell)):>8.1f} "
            f"{fmt(percentile(ours, 50), 4):>9} {fmt(percentile(ours, 95), 4):>9} "
            f"{fmt(max(ours, default=float('nan')), 3):>9} {off:>6} "
            f"{fmt(percentile(book, 95), 3):>9} {sum(e > MAX_OFF_MS for e in book):>8}"
        )
    cell_all, ours_all, _, _ = results[(0, 41)]
    _, ours_10, _, off_10 = results[(10, 41)]
    rejected = sum(not detected for _, detected in absent)
    detect = _pct(len(ours_all), len(cell_all))
    reject = _pct(rejected, len(absent))
    p95 = percentile(ours_all, 95)
    worst = sorted((r for r in present if r[1] is not None), key=lambda r: -abs(r[1]))[:5]
    print("largest errors (ours): " + "; ".join(f"{r[1]:+.3f} ms ({r[3]})" for r in worst))
    print(f"absent speakers rejected: {rejected}/{len(absent)} = {reject:.1f} %")
    warned = [r for r in present if r[4]]
    confident = [r for r in present if r[1] is not None and abs(r[1]) > MAX_OFF_MS and not r[4]]
    confident_10 = [r for r in confident if r[0] >= 10]
    print(
        f"'could not be confirmed' warnings: {len(warned)} of {len(present)} present speakers; "
        f"> {MAX_OFF_MS} ms off without that warning: {len(confident)} "
        f"({len(confident_10)} at SNR >= 10 dB)"
    )

    gaps = _gaps(args.gap_scenes, seed)
    print(f"\ngaps: {args.gap_scenes} scenes; found = start within 2 ms and length within 5 ms")
    print(
        f"{'programme':<9} {'n':>4} {'holes':>6} {'ours %':>7} {'false':>6} "
        f"{'peer %':>7} {'peer false':>10}"
    )
    total = {key: sum(c[key] for c in gaps.values()) for key in gaps["tone"]}
    for name, cell in (*gaps.items(), ("all", total)):
        print(
            f"{name:<9} {cell['n']:>4} {cell['holes']:>6} "
            f"{_pct(cell['ours'], cell['holes']):>7.1f} {cell['ours_false']:>6} "
            f"{_pct(cell['peer'], cell['holes']):>7.1f} "
            f"{cell['peer_false']:>10}"
        )
    holes_pct = _pct(total["ours"], total["holes"])
    false_per_10 = 10.0 * total["ours_false"] / max(1, total["n"])

    print("\ntiming (median of runs, ours and textbook in turn), 6 speakers, 48 kHz")
    ratios = []
    for duration in (3.0, 60.0):
        runs = args.runs if duration < 10 else max(3, args.runs // 2)
        ours_s, book_s = _timing(duration, runs)
        ratios.append(ours_s / book_s)
        print(
            f"  {duration:>4.0f} s recording: ours {ours_s * 1000:8.1f} ms, textbook "
            f"{book_s * 1000:8.1f} ms, ratio {ours_s / book_s:.2f}"
        )
    print("\nverdicts")
    checks = [
        (
            f"no arrival > {MAX_OFF_MS} ms off at SNR >= 10 dB ({off_10} of {len(ours_10)})",
            off_10 == 0,
        ),
        (
            f"of those, none without a warning (confident wrong: {len(confident_10)})",
            not confident_10,
        ),
        (f"p95 error <= {P95_MS} ms at SNR >= 0 dB ({p95:.4f})", p95 <= P95_MS),
        (f"detected >= {DETECT_PCT} % at SNR >= 0 dB ({detect:.2f} %)", detect >= DETECT_PCT),
        (f"absent rejected >= {REJECT_PCT} % ({reject:.1f} %)", reject >= REJECT_PCT),
        (f"holes found >= {HOLES_PCT} % ({holes_pct:.1f} %)", holes_pct >= HOLES_PCT),
        (
            f"false gaps <= {FALSE_PER_10} per 10 recordings ({false_per_10:.2f})",
            false_per_10 <= FALSE_PER_10,
        ),
        (
            f"3 s analysis <= {TIME_RATIO_3S} x textbook ({ratios[0]:.2f})",
            ratios[0] <= TIME_RATIO_3S,
        ),
        (f"60 s analysis faster than textbook ({ratios[1]:.2f})", ratios[1] < 1.0),
    ]
    for name, ok in checks:
        print(f"  {verdict(ok)}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
