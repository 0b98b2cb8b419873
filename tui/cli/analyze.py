"""`btmon-tui analyze REC.wav --reference …`: arrivals, SNR, spread and gaps in a recording."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from core.fleet.model import sync_word
from core.probe.analysis import ProbeError, analyze
from core.probe.signals import load_reference
from core.probe.wavio import WavError, read_wav
from tui.cli.options import fail


def run(args: argparse.Namespace) -> int:

    try:
        wav = read_wav(Path(args.recording))
        reference = load_reference(Path(args.reference))
    except (WavError, ProbeError) as exc:
        return fail(str(exc))
    samples = wav.samples
    warnings: list[str] = []
    if samples.ndim == 2:
        channel = args.channel or 1
        if not 1 <= channel <= samples.shape[1]:
            return fail(f"--channel {channel}: {args.recording} has {samples.shape[1]} channels")
        if args.channel is None:
            warnings.append(
                f"{args.recording} has {samples.shape[1]} channels: analysed channel 1 "
                "(choose with --channel)"
            )
        samples = np.ascontiguousarray(samples[:, channel - 1])
    elif args.channel not in (None, 1):
        return fail(f"--channel {args.channel}: {args.recording} is mono")
    try:
        result = analyze(samples, wav.rate, reference)
    except ProbeError as exc:
        return fail(str(exc))
    data = result.to_json()
    data["warnings"] = warnings + list(data.get("warnings") or [])
    for warning in data["warnings"]:
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    print(json.dumps(data) if args.json else analysis_table(data))
    return 0


def analysis_table(data: dict[str, Any]) -> str:
    """`analyze` in words: one line per reference signal, the spread, the gaps."""
    lines = [f"{'probe':>5}  {'heard':5}  {'arrival':>12}  {'SNR':>8}  {'level':>9}"]
    for row in data["speakers"]:
        arrival = f"{row['arrival_ms']:.3f} ms" if row.get("arrival_ms") is not None else "-"
        snr = f"{row['snr_db']:.1f} dB" if row.get("snr_db") is not None else "-"
        level = f"{row['level_dbfs']:.1f} dBFS" if row.get("level_dbfs") is not None else "-"
        heard = "yes" if row["detected"] else "NO"
        lines.append(f"{row['index']:>5}  {heard:5}  {arrival:>12}  {snr:>8}  {level:>9}")
    spread = data.get("spread_ms")
    if spread is not None:
        lines.append(f"spread {spread:.3f} ms ({sync_word(spread)})")
    gaps = data.get("gaps") or []
    lines.append(
        f"{len(gaps)} gap(s) ≥ 20 ms: "
        + ", ".join(f"{g['duration_ms']:.0f} ms at {g['start_ms'] / 1000:.3f} s" for g in gaps)
        if gaps
        else "no gaps"
    )
    return "\n".join(lines)
