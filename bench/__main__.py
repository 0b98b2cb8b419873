"""Run the benchmarks: `.venv/bin/python -m bench [NAME ...] [--runs N]`.

NAME: watch (change -> `watch --json` line latency vs a bare dbus-next subscriber),
tui (= tui-load tui-load-wide tui-idle tui-hour), tui-load (100 speakers x 10 changes/s:
latency, CPU, at 120x40), tui-load-wide (the same at 200x50, where every change is visible),
tui-idle (demo fleet, idle CPU), tui-hour (RSS after a simulated hour), and every other
bench/<name>.py that has a `main(argv)` (run as `name` with dashes, e.g. store-ingest; it
prints its own tables). Default: all.

Benchmarks are not tests: they print numbers, targets and PASS/FAIL against the targets, and
always exit 0 unless something broke. Each one cleans up its processes and private bus.
The machine may be shared: every number has a same-run peer next to it; compare ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import fmt, log, machine, verdict

Row = tuple[str, str, str, str, bool | None]  # metric, value, same-run peer, target, ok


def _watch() -> tuple[str, list[Row], dict[str, Any]]:
    from bench import watch_latency

    res = watch_latency.run()
    w, f = res["watch"], res["floor"]
    rows: list[Row] = [
        (
            "watch --json p99 latency ms (p50)",
            f"{fmt(w['p99'], 2)} ({fmt(w['p50'], 2)})",
            f"floor {fmt(f['p99'], 2)} ({fmt(f['p50'], 2)}), x{fmt(res['ratio_p99'], 2)}",
            f"<= 3 x floor + 5 = {fmt(res['limit_p99_ms'], 2)}",
            w["p99"] <= res["limit_p99_ms"],
        ),
        (
            "watch --json changes missed",
            str(res["watch_missed"]),
            f"floor {res['floor_missed']}",
            "0",
            res["watch_missed"] == 0,
        ),
    ]
    return watch_latency.report(res), rows, res


def _tui(parts: tuple[str, ...]) -> Callable[[], tuple[str, list[Row], dict[str, Any]]]:
    def run() -> tuple[str, list[Row], dict[str, Any]]:
        from bench import tui_load

        res = tui_load.run(parts)
        rows: list[Row] = []
        for key in ("load", "load_wide"):
            if key not in res:
                continue
            a, p = res[key], res[f"{key}_peer"]
            la, lp = a["latency"], p["latency"]
            ca, cp = a["cpu"]["app_cpu_pct"], p["cpu"]["app_cpu_pct"]
            size = tui_load.SIZE if key == "load" else tui_load.WIDE_SIZE
            where = f"{key.replace('_', '-')} {size[0]}x{size[1]}"
            rows.append(
                (
                    f"{where}: change->rendered p99 ms (p50)",
                    f"{fmt(la['p99'])} ({fmt(la['p50'])})",
                    f"peer {fmt(lp['p99'])} ({fmt(lp['p50'])}), x{fmt(la['p99'] / lp['p99'], 2)}",
                    f"<= {fmt(tui_load.TARGET_LATENCY_P99_MS, 0)}, none missed",
                    la["p99"] <= tui_load.TARGET_LATENCY_P99_MS and la["missed"] == 0,
                )
            )
            rows.append(
                (
                    f"{where}: app CPU % of a core",
                    fmt(ca),
                    f"peer {fmt(cp)}, x{fmt(ca / cp, 2)}",
                    f"<= {fmt(tui_load.TARGET_LOAD_CPU_PCT, 0)}",
                    ca <= tui_load.TARGET_LOAD_CPU_PCT,
                )
            )
        if "idle" in res:
            c = res["idle"]["cpu"]
            rows.append(
                (
                    "idle: app CPU % of a core (demo fleet)",
                    fmt(c["app_cpu_pct"], 2),
                    f"peer {fmt(c['peer_cpu_pct'], 2)}",
                    f"<= {fmt(tui_load.TARGET_IDLE_CPU_PCT, 0)}",
                    c["app_cpu_pct"] <= tui_load.TARGET_IDLE_CPU_PCT,
                )
            )
        if "hour" in res:
            h, hp = res["hour"], res.get("hour_peer", {})
            how = "measured" if h["steps"] >= h["hour_steps"] else "extrapolated"
            hour_mb = h["rss_hour_extrapolated_mb"]
            rows.append(
                (
                    f"hour: RSS MB after 1 h ({how} from {fmt(h['sim_s'] / 60, 1)} sim. min)",
                    fmt(hour_mb),
                    f"peer {fmt(hp.get('rss_hour_extrapolated_mb', float('nan')))}",
                    f"<= {fmt(tui_load.TARGET_RSS_MB, 0)}",
                    hour_mb <= tui_load.TARGET_RSS_MB if hour_mb == hour_mb else None,
                )
            )
        return tui_load.report(res), rows, res

    return run


BENCHMARKS: dict[str, Callable[[], tuple[str, list[Row], dict[str, Any]]]] = {
    "watch": _watch,
    "tui-load": _tui(("load",)),
    "tui-load-wide": _tui(("load-wide",)),
    "tui-idle": _tui(("idle",)),
    "tui-hour": _tui(("hour",)),
}
#: bench/ modules that are not benchmarks of their own, or are run through the ones above.
NOT_BENCHMARKS = {"common", "hour_sim", "peer_app", "tui_load", "watch_latency"}


def _other(stem: str) -> Callable[[], tuple[str, list[Row], dict[str, Any]]]:
    """Another benchmark module of bench/: run its main([]) and keep what it printed."""

    def run() -> tuple[str, list[Row], dict[str, Any]]:
        module = importlib.import_module(f"bench.{stem}")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = module.main([])
        name = stem.replace("_", "-")
        row: Row = (f"{name}: see its section", f"exit {code}", "", "", None)
        return out.getvalue().rstrip(), [row], {"exit": code}

    return run


def _discover() -> None:
    for path in sorted(Path(__file__).parent.glob("*.py")):
        stem = path.stem
        if stem.startswith("_") or stem in NOT_BENCHMARKS:
            continue
        if "\ndef main(" in path.read_text(errors="replace"):
            BENCHMARKS.setdefault(stem.replace("_", "-"), _other(stem))


_discover()
ALIASES = {
    "all": list(BENCHMARKS),
    "tui": ["tui-load", "tui-load-wide", "tui-idle", "tui-hour"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=" | ".join(["all", "tui", *BENCHMARKS])
    )
    parser.add_argument("--runs", type=int, default=1, help="run each benchmark N times")
    parser.add_argument("--json", metavar="FILE", help="also write every result to FILE")
    parser.add_argument(
        "--hour-budget",
        type=float,
        metavar="S",
        help="tui-hour: wall-clock seconds to simulate for (default 45; about 1000 simulates "
        "the whole hour on a 2-core machine)",
    )
    args = parser.parse_args(argv)
    names: list[str] = []
    for name in args.names or ["all"]:
        for resolved in ALIASES.get(name, [name]):
            if resolved not in BENCHMARKS:
                parser.error(f"unknown benchmark {name!r}")
            if resolved not in names:
                names.append(resolved)

    if args.hour_budget:
        from bench import tui_load

        tui_load.HOUR_BUDGET_S = args.hour_budget
    info = machine()
    print("# btmon-tui benchmarks\n")
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"Linux {info['kernel']}; {info['date']}; load average before: {info['loadavg']}"
    )
    print(f"code: {info['source']}")
    print(f"command: {Path(sys.executable).name} -m bench {' '.join(argv or sys.argv[1:])}\n")
    summary: list[tuple[int, Row]] = []
    everything: list[dict[str, Any]] = []
    for run in range(1, args.runs + 1):
        for name in names:
            log(f"{name}: run {run} of {args.runs}")
            started = time.monotonic()
            try:
                text, rows, raw = BENCHMARKS[name]()
            except Exception as exc:  # one broken benchmark must not hide the others
                log(f"{name}: failed: {exc!r}")
                text, rows, raw = f"FAILED: {exc!r}", [(name, "error", "", "", False)], {}
            took = time.monotonic() - started
            print(f"## {name}, run {run} ({fmt(took, 0)} s)\n\n{text}\n", flush=True)
            summary += [(run, row) for row in rows]
            everything.append({"name": name, "run": run, "seconds": took, "result": raw})
    print("## summary\n")
    print("| run | metric | value | same-run peer | target | result |")
    print("|---|---|---|---|---|---|")
    for run, (metric, value, peer, target, ok) in summary:
        result = "see its section" if ok is None else verdict(ok)
        print(f"| {run} | {metric} | {value} | {peer} | {target} | {result} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "runs": everything}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
