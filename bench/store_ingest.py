"""SQLite ingest: events/s that EventStore writes (append on the caller's thread, batched commits
on its writer thread), next to a bare `executemany` of the same rows in one transaction, the
floor, measured in the same run on the same disk. Target: >= 20,000 events/s.

`.venv/bin/python -m bench.store_ingest [--events 200000] [--runs 3] [--dir DIR]`
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fmt, log, machine, percentile, verdict

# The exact table, indexes and row encoding EventStore uses, so the floor differs only in how
# rows reach SQLite.
from core.eventlog.store import _INSERT, _SCHEMA, EventStore, _row
from core.fleet.events import DeviceEvent, Event, SpeakerEvent, TransportEvent
from core.fleet.model import Speaker, Transport, Verdict

EVENTS = 200_000
RUNS = 3
#: The issue's target for batched ingest.
TARGET_EVENTS_PER_S = 20_000
SEED = 20_240_611
#: A fleet at a big event: 24 speakers on two adapters.
SPEAKERS = 24
CODECS = ("SBC", "AAC", "aptX LL", "aptX", "LDAC")


def realistic_events(count: int, seed: int = SEED) -> list[Event]:
    """`speaker`, `transport` and `device` events of a busy fleet, in time order."""
    rng = random.Random(seed)
    addresses = [f"00:1A:7D:DA:71:{i:02X}" for i in range(SPEAKERS)]
    t = 1_750_000_000.0
    events: list[Event] = []
    while len(events) < count:
        t += rng.expovariate(50.0)  # ~50 events/s across the fleet
        i = rng.randrange(SPEAKERS)
        address = addresses[i]
        roll = rng.random()
        if roll < 0.5:
            state = rng.choice(("active", "active", "idle", "pending"))
            streaming = state == "active"
            speaker = Speaker(
                path=f"/org/bluez/hci{i % 2}/dev_{address.replace(':', '_')}",
                address=address,
                name=f"Stage speaker {i + 1}",
                adapter=f"hci{i % 2}",
                paired=True,
                connected=True,
                is_speaker=True,
                verdict=Verdict.STREAMING if streaming else Verdict.CONNECTED_IDLE,
                transport=Transport("/fd0", state, CODECS[i % 5], rng.uniform(30, 200), 100),
                battery=rng.randrange(5, 101),
                media_pps=rng.uniform(250, 350) if streaming else 0.0,
                last_dropout=t - rng.uniform(0, 600) if rng.random() < 0.3 else None,
                period_s=282.1 if i == 3 else None,
                changed_t=t,
            )
            events.append(SpeakerEvent(t, speaker))
        elif roll < 0.8:
            state = rng.choice(("idle", "pending", "active", "absent"))
            events.append(TransportEvent(t, address, state, CODECS[i % 5]))
        else:
            reason = rng.choice(("timeout", "remote", "local", None))
            events.append(DeviceEvent(t, address, rng.random() < 0.5, reason))
    return events


def _bursts(events: list[Event], seed: int = SEED) -> list[list[Event]]:
    """Split into the 1-8 event bursts one D-Bus signal causes: the append() calls of a UI."""
    rng = random.Random(seed + 1)
    bursts: list[list[Event]] = []
    start = 0
    while start < len(events):
        size = rng.randint(1, 8)
        bursts.append(events[start : start + size])
        start += size
    return bursts


def _store_run(bursts: list[list[Event]], total: int, path: Path) -> dict[str, Any]:
    store = EventStore(path, retention_days=None)
    store.open()
    calls: list[float] = []
    started = time.perf_counter()
    for burst in bursts:
        before = time.perf_counter()
        store.append(burst)
        calls.append(time.perf_counter() - before)
    appended = time.perf_counter()
    assert store.flush(timeout=600.0), "flush timed out"
    done = time.perf_counter()
    transactions = store.transactions
    store.close()
    stored = store.count()
    assert stored == total, f"{stored} of {total} events stored"
    return {
        "events_per_s": total / (done - started),
        "append_only_events_per_s": total / (appended - started),
        "append_call_us": {
            "p50": percentile(calls, 50) * 1e6,
            "p99": percentile(calls, 99) * 1e6,
            "max": max(calls) * 1e6,
        },
        "calls": len(calls),
        "transactions": transactions,
        "seconds": done - started,
    }


def _floor_run(events: list[Event], path: Path) -> dict[str, Any]:
    """Same rows, same file settings: serialise, then one executemany in one transaction."""
    started = time.perf_counter()
    rows = [_row(event) for event in events]
    serialised = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in _SCHEMA:
        conn.execute(statement)
    before_insert = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(_INSERT, rows)
    conn.execute("COMMIT")
    inserted = time.perf_counter()
    conn.close()
    total = len(rows)
    return {
        "events_per_s": total / (inserted - before_insert),
        "with_json_events_per_s": total / ((serialised - started) + (inserted - before_insert)),
        "json_events_per_s": total / (serialised - started),
    }


def run(count: int = EVENTS, runs: int = RUNS, directory: Path | None = None) -> dict[str, Any]:
    events = realistic_events(count)
    bursts = _bursts(events)
    payload_bytes = sum(len(_row(e)[3]) for e in events[:2000]) / min(2000, count)
    store_runs: list[dict[str, Any]] = []
    floor_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="store-ingest-", dir=directory) as tmp:
        for number in range(runs):
            log(f"store_ingest: run {number + 1} of {runs}")
            # Alternate the order so a change in machine load hits both sides alike.
            order = ("store", "floor") if number % 2 == 0 else ("floor", "store")
            for side in order:
                path = Path(tmp) / f"{side}-{number}.sqlite3"
                gc.collect()
                if side == "store":
                    store_runs.append(_store_run(bursts, count, path))
                else:
                    floor_runs.append(_floor_run(events, path))
                for leftover in Path(tmp).iterdir():  # each run starts on an empty directory
                    leftover.unlink()
    store_rate = statistics.median(r["events_per_s"] for r in store_runs)
    floor_rate = statistics.median(r["events_per_s"] for r in floor_runs)
    floor_json_rate = statistics.median(r["with_json_events_per_s"] for r in floor_runs)
    return {
        "events": count,
        "runs": runs,
        "payload_bytes_mean": payload_bytes,
        "disk": directory or Path(tempfile.gettempdir()),
        "store": store_runs,
        "floor": floor_runs,
        "store_events_per_s": store_rate,
        "floor_events_per_s": floor_rate,
        "floor_with_json_events_per_s": floor_json_rate,
        "ratio": store_rate / floor_rate,
        "ratio_with_json": store_rate / floor_json_rate,
        "pass": store_rate >= TARGET_EVENTS_PER_S,
    }


def report(res: dict[str, Any]) -> str:
    def rate(value: float) -> str:
        return f"{value:,.0f}"

    lines = [
        f"{res['events']:,} events (speaker/transport/device, mean payload "
        f"{fmt(res['payload_bytes_mean'], 0)} B), {res['runs']} runs, median; disk: "
        f"{res['disk']}",
        "",
        "| writer | events/s | notes |",
        "|---|---|---|",
    ]
    for number, (s, f) in enumerate(zip(res["store"], res["floor"], strict=True), 1):
        calls = s["append_call_us"]
        lines.append(
            f"| run {number}: EventStore (Event objects in, append + flush) | "
            f"{rate(s['events_per_s'])} | {s['calls']:,} append() calls of 1-8 events: "
            f"p50 {fmt(calls['p50'])} µs, p99 {fmt(calls['p99'])} µs, max "
            f"{fmt(calls['max'] / 1000, 2)} ms; {s['transactions']} transactions |"
        )
        lines.append(
            f"| run {number}: floor, bare executemany, one transaction | "
            f"{rate(f['events_per_s'])} | rows pre-serialised; with JSON encoding "
            f"{rate(f['with_json_events_per_s'])}; JSON alone {rate(f['json_events_per_s'])} |"
        )
    lines.append(
        f"\nEventStore {rate(res['store_events_per_s'])} events/s = "
        f"x{fmt(res['ratio'], 2)} of the bare executemany floor "
        f"({rate(res['floor_events_per_s'])}/s), x{fmt(res['ratio_with_json'], 2)} of the floor "
        f"including JSON encoding ({rate(res['floor_with_json_events_per_s'])}/s); target >= "
        f"{rate(TARGET_EVENTS_PER_S)}/s: **{verdict(res['pass'])}**"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a disk)")
    args = parser.parse_args(argv)
    info = machine()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, SQLite "
        f"{sqlite3.sqlite_version}, Linux {info['kernel']}; {info['date']}; load average "
        f"before: {info['loadavg']}\n"
    )
    print(report(run(args.events, args.runs, args.dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
