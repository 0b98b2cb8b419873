"""Dropout counts over seeded nights at a venue (issue 11): `report` and the live detector vs
the truth, and the detector before issue 11 as the same-run peer.

Run: `python -m bench.dropout_nights [--nights 300] [--seed S] [--json FILE]`. Nights come from
tests/dropouts/night.py (3–12 speakers, sessions and breaks, music stops staggered 0–5 s,
operator resyncs, old BlueZ, every kind of dropout), each from a fresh seed (printed; --seed or
BTMON_DROPOUT_SEED pins the first). Targets (issue 11 §3): counts exact for ≥ 95 % of speakers,
no quiet speaker (no dropout in truth) with a dropout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, log, machine, verdict
from core.dropouts.detector import DropoutDetector
from core.dropouts.report import build_report
from tests.dropouts.night import VARIANTS, Night, fresh_seed, night, perturbed, run_live

#: The detector before issue 11 (2 s confirmation, no fleet-stop spread, probe + stall twice).
PEER_COMMIT = "ec59988"
EXACT_TARGET = 0.95

Counts = dict[str, list[tuple[float, str]]]


def _peer_module() -> types.ModuleType | None:
    """core/dropouts/detector.py as it was at PEER_COMMIT (None when git cannot show it)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{PEER_COMMIT}:core/dropouts/detector.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("old_dropout")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{PEER_COMMIT}:core/dropouts/detector.py", "exec"), module.__dict__)
    return module


def _history(detector: Any, addresses: Sequence[str]) -> Counts:
    return {a: [(round(d.start, 3), d.kind) for d in detector.dropouts(a)] for a in addresses}


def new_report(n: Night) -> Counts:
    rows = build_report(n.records)["speakers"]
    found = {r["address"]: r for r in rows}
    # The report gives counts and kinds; the starts come from the same detector run.
    return {
        a: [(0.0, k) for k, c in sorted(found[a]["kinds"].items()) for _ in range(c)]
        if a in found
        else []
        for a in n.addresses
    }


def new_live(n: Night) -> Counts:
    detector = DropoutDetector()
    run_live(n.records, detector)
    return _history(detector, n.addresses)


def new_live_everything(n: Night) -> Counts:
    """Every record fed to `observe` (snapshots, transport lines): a program reading a log."""
    detector = DropoutDetector()
    run_live(n.records, detector, types=None)
    return _history(detector, n.addresses)


def peer_report(module: types.ModuleType) -> Callable[[Night], Counts]:
    """The old `report` derivation: speaker/device records, a tick before each, 2 s at the end."""

    def run(n: Night) -> Counts:
        detector = module.DropoutDetector()
        raw: list[Mapping[str, Any]] = []
        for record in n.records:
            if record["type"] == "snapshot":
                raw += [{**s, "type": "speaker", "t": record["t"]} for s in record["speakers"]]
            elif record["type"] in ("speaker", "device"):
                raw.append(record)
        for record in raw:
            detector.tick(record["t"])
            detector.observe(record, record["t"])
        detector.tick(n.records[-1]["t"] + module.CONFIRM_AFTER_S)
        return _history(detector, n.addresses)

    return run


def score(nights: Sequence[Night], found: Sequence[Counts]) -> dict[str, Any]:
    speakers = exact = kinds_exact = quiet = quiet_false = extra = missed = 0
    wrong: list[str] = []
    for n, got in zip(nights, found, strict=True):
        for a in n.addresses:
            truth = n.truth[a]
            mine = got[a]
            speakers += 1
            ok = len(mine) == len(truth)
            exact += ok
            kinds_exact += sorted(k for _, k in mine) == sorted(k for _, k in truth)
            extra += max(0, len(mine) - len(truth))
            missed += max(0, len(truth) - len(mine))
            if not truth:
                quiet += 1
                quiet_false += bool(mine)
            if not ok and len(wrong) < 5:
                wrong.append(f"seed {n.seed} {a}: {len(mine)} vs {len(truth)}")
    return {
        "speakers": speakers,
        "exact_rate": exact / speakers if speakers else float("nan"),
        "kinds_exact_rate": kinds_exact / speakers if speakers else float("nan"),
        "quiet": quiet,
        "quiet_with_dropout": quiet_false,
        "extra": extra,
        "missed": missed,
        "examples": wrong,
    }


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(list(argv))
    first = args.seed if args.seed is not None else fresh_seed()
    log(f"dropout nights: {args.nights} nights from seed {first}")
    nights = [night(first + k) for k in range(args.nights)]
    with_rows = [n for n in nights if n.notes["rows"]]
    results: dict[str, Any] = {
        "seed": first,
        "nights": len(nights),
        "machine": machine(),
        "records": sum(len(n.records) for n in nights),
    }
    runs: list[tuple[str, Sequence[Night], Callable[[Night], Counts]]] = [
        ("report (all nights)", nights, new_report),
        ("report (nights with speaker rows)", with_rows, new_report),
        ("live detector, ticked (rows)", with_rows, new_live),
        ("live detector, every record fed (all nights)", nights, new_live_everything),
    ]
    for variant in VARIANTS[1:]:
        other = [perturbed(n, variant) for n in nights]
        runs.append((f"report, logs {variant}", other, new_report))
        rows_only = [n for n in other if n.notes["rows"]]
        runs.append((f"live, logs {variant}", rows_only, new_live))
    peer = _peer_module()
    if peer is not None:
        runs.append(
            (f"peer: detector at {PEER_COMMIT}, report (rows)", with_rows, peer_report(peer))
        )
    print(
        "| run | nights | speakers | exact counts | exact kinds |"
        " quiet speakers with a dropout | extra / missed | ms per night | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, subset, method in runs:
        start = time.perf_counter()
        found = [method(n) for n in subset]
        took = (time.perf_counter() - start) * 1000 / max(1, len(subset))
        s = score(subset, found)
        s["ms_per_night"] = took
        results[name] = s
        ok = s["exact_rate"] >= EXACT_TARGET and s["quiet_with_dropout"] == 0
        target = "" if name.startswith("peer") else verdict(ok)
        print(
            f"| {name} | {len(subset)} | {s['speakers']} | {s['exact_rate']:.1%} | "
            f"{s['kinds_exact_rate']:.1%} | {s['quiet_with_dropout']} of {s['quiet']} | "
            f"{s['extra']} / {s['missed']} | {took:.0f} | {target} |"
        )
        for example in s["examples"]:
            log(f"  {name}: {example}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
