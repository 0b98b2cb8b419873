"""`report` over 1,000,000 events (target ≤ 5 s) and DropoutDetector CPU per event.

Run: `python -m bench.report_scale [--events N]`. Same-run peers: a plain pass that
json.loads every line (what a naive report would do) and `grep -c` (the I/O floor).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.dropouts.detector import DropoutDetector
from core.dropouts.report import report_from_db, report_from_jsonl
from core.eventlog.store import EventStore
from core.fleet.events import DeviceEvent, DropoutEvent, SpeakerEvent, TransportEvent
from core.fleet.model import Speaker, Transport, Verdict

T0 = 1_795_800_000.0
SPEAKERS = 20


def _speaker(index: int, verdict: Verdict, volume: int, t: float) -> Speaker:
    return Speaker(
        path=f"/org/bluez/hci0/dev_{index}",
        address=f"10:00:00:00:00:{index:02X}",
        name=f"Speaker {index:02d}",
        adapter="hci0",
        paired=True,
        connected=verdict != Verdict.DISCONNECTED,
        is_speaker=True,
        verdict=verdict,
        transport=Transport("/t", "active", "SBC", 150.0, volume)
        if verdict == Verdict.STREAMING
        else None,
        battery=80,
        media_pps=None,
        last_dropout=None,
        period_s=None,
        changed_t=t,
    )


def generate(count: int, seed: int = 1) -> list[Any]:
    """`count` events like a busy day: volume changes, and speaker 0 dropping every 282 s."""
    rng = random.Random(seed)
    events: list[Any] = []
    t = T0
    next_drop = T0 + 282
    while len(events) < count:
        t += 0.05
        if t >= next_drop:
            address = "10:00:00:00:00:00"
            events.append(TransportEvent(t, address, "absent"))
            events.append(DeviceEvent(t, address, False, "timeout"))
            events.append(DropoutEvent(t, address, "link"))
            events.append(DropoutEvent(t, address, "link", 5.0, "end", t + 5))
            next_drop = t + 282 * (1 + rng.uniform(-0.02, 0.02))
            continue
        index = rng.randrange(SPEAKERS)
        events.append(SpeakerEvent(t, _speaker(index, Verdict.STREAMING, rng.randrange(128), t)))
    return events[:count]


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    events = generate(args.events)
    with tempfile.TemporaryDirectory(prefix="btmon-bench-") as tmp:
        jsonl = Path(tmp) / "events.jsonl"
        jsonl.write_text("".join(e.to_line() + "\n" for e in events))
        db = Path(tmp) / "events.sqlite3"
        with EventStore(db, retention_days=None) as store:
            for start in range(0, len(events), 10_000):
                store.append(events[start : start + 10_000])
        size_mb = jsonl.stat().st_size / 1e6

        t_jsonl, report = timed(lambda: report_from_jsonl(jsonl))
        t_db, report_db = timed(lambda: report_from_db(db))
        t_cli, _ = timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "tui.cli", "report", "--events", str(jsonl), "--json"],
                capture_output=True,
                check=True,
            )
        )
        t_naive, _ = timed(lambda: [json.loads(line) for line in jsonl.open()])
        t_grep, _ = timed(
            lambda: subprocess.run(["grep", "-c", "dropout", str(jsonl)], capture_output=True)
        )

        records = [e.to_json() for e in events]
        detector = DropoutDetector()
        t_detect, _ = timed(lambda: [detector.observe(r, r["t"]) for r in records])

    sub = next(s for s in report["speakers"] if s["address"] == "10:00:00:00:00:00")
    print(f"{len(events):,} events, JSON Lines {size_mb:.0f} MB")
    print(f"report --events (in process)  {t_jsonl:6.2f} s   target <= 5 s")
    print(f"report --events (CLI, total)  {t_cli:6.2f} s")
    print(f"report --db                   {t_db:6.2f} s")
    print(f"peer: json.loads every line   {t_naive:6.2f} s   (report is x{t_jsonl / t_naive:.2f})")
    print(f"floor: grep -c                {t_grep:6.2f} s")
    print(f"detector: {t_detect / len(records) * 1e6:.2f} µs per event ({len(records):,} records)")
    print(
        f"found: {sub['dropouts']} dropouts, period {sub['period_s']} s "
        f"(truth 282 ± 2 %), db report agrees: {report_db['speakers'] == report['speakers']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
