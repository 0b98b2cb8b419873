"""`btmon-tui report`: each speaker's dropouts and their period, from the event log or a
`watch --json` file, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.dropouts.report import ReportInputError, report_from_db, report_from_jsonl
from core.fleet.describe import age, plural, stamp
from tui.cli.options import fail


def run(args: argparse.Namespace) -> int:

    if not (args.events or args.db):
        return fail("report needs --db PATH (the event log) or --events FILE (watch --json)")
    if args.since is not None and args.until is not None and args.until <= args.since:
        return fail("--until must be later than --since")
    window = {"since": args.since, "until": args.until}
    try:
        if args.events:
            result = report_from_jsonl(Path(args.events), now=args.now, **window)
        else:
            result = report_from_db(Path(args.db), now=args.now, **window)
    except ReportInputError as exc:
        return fail(str(exc))
    for warning in result.get("warnings", []):
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    print(report_table(result))
    return 0


def report_table(result: dict[str, object], now: float | None = None) -> str:
    """The report as a table in words; times carry their date when not from today."""
    today = time.time() if now is None else now
    window = result["window"]
    assert isinstance(window, dict)
    lines = []
    if window.get("start") is not None:
        span = float(window["end"]) - float(window["start"])
        lines.append(
            f"window {stamp(float(window['start']), today)} – "
            f"{stamp(float(window['end']), today)} ({age(span)})"
        )
    speakers = result["speakers"]
    assert isinstance(speakers, list)
    if not speakers:
        lines.append("no dropouts")
        return "\n".join(lines)
    lines.append(f"{'speaker':20} {'address':17} {'drops':>5}  {'period':>8} {'conf':>5}  next")
    for row in speakers:
        period = f"{age(row['period_s'])}" if row["period_s"] else "-"
        conf = f"{row['period_confidence'] * 100:.0f}%" if row["period_s"] else "-"
        nxt = stamp(row["next_expected"], today) if row["next_expected"] else "-"
        name = row.get("name") or ""
        lines.append(
            f"{name[:20]:20} {row['address']:17} {row['dropouts']:>5}  {period:>8} {conf:>5}  {nxt}"
        )
    fleet = result.get("fleet")
    if isinstance(fleet, dict) and fleet.get("dropouts"):
        lines.append(
            f"{plural(fleet['dropouts'], 'dropout')}: {fleet['alone']} alone (speaker "
            f"firmware?), {fleet['together']} together with other speakers (host or "
            "interference?)"
        )
    return "\n".join(lines)
