"""`report`: dropouts and their periods per speaker over a recorded window (DESIGN §4.3).

Input is §4.2 records from the SQLite log or a JSON Lines file (`watch --json` output).
Recorded `dropout` events are used as they are (a `cancelled` one removes its dropout; records
of one interruption are merged); a recording without any is run through the same
DropoutDetector the live monitor uses, which then sees the whole recording: a silence is judged
with what the fleet did next, as the live detector does once it has waited. So is a recording
whose dropouts an older version judged (music stops counted as dropouts): where raw events
cover them they are judged again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.dropouts.detector import FLEET_STOP_SPREAD_S, DropoutDetector
from core.fleet.events import EventDecodeError, decode_line, dropout_start_t

#: Record types the detector needs when it has to derive dropouts itself (`transport` for
#: speakers without speaker rows, `probe` for its misses, `action` for the operator's resyncs).
RAW_TYPES = frozenset({"speaker", "device", "transport", "probe", "action"})


class ReportInputError(ValueError):
    """The input cannot be read at all (missing, not JSON Lines, not a btmon-tui log)."""


@dataclass
class JsonlScan:
    """What a pass over a JSON Lines file found."""

    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    good_lines: int = 0
    has_dropouts: bool = False
    #: Dropout records of a version before issue 11 (see `judged_before_issue_11`).
    has_old_dropouts: bool = False


def read_jsonl(path: Path, *, types: frozenset[str] | None = None) -> JsonlScan:
    """Parse the lines of `path` whose type is in `types` (all when None); bad lines warn."""
    scan = JsonlScan()
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if (
                types is not None
                and '"type":"' in line
                and not any(f'"type":"{t}"' in line for t in types)
            ):
                # Cheap skip of a compact line (as `watch` writes) of a type we do not need;
                # anything else is parsed, so a bad line is still reported.
                scan.good_lines += 1
                continue
            try:
                record = decode_line(line)
            except EventDecodeError as exc:
                if len(scan.warnings) < 20:
                    scan.warnings.append(f"{path.name} line {number}: {exc}; skipped")
                elif len(scan.warnings) == 20:
                    scan.warnings.append("more bad lines skipped")
                continue
            scan.good_lines += 1
            if types is None or record["type"] in types:
                scan.records.append(record)
                if record["type"] == "dropout":
                    scan.has_dropouts = True
                    scan.has_old_dropouts |= judged_before_issue_11(record)
    return scan


def judged_before_issue_11(record: Mapping[str, Any]) -> bool:
    """A `dropout` record of a version whose detector took music stops for dropouts and a
    probe miss plus its stall for two (no `start_t`, or added by the log's migration)."""
    return "start_t" not in record or "migrated_from" in record


def within(
    records: list[dict[str, Any]], since: float | None, until: float | None
) -> list[dict[str, Any]]:
    """The records from `since` on and before `until` (a dropout by its start)."""
    if since is None and until is None:
        return records
    low = -math.inf if since is None else since
    high = math.inf if until is None else until
    return [r for r in records if low <= float(r.get("start_t", r["t"])) < high]


def _clamp(
    window: tuple[float, float] | None, since: float | None, until: float | None
) -> tuple[float, float] | None:
    if window is None:
        return None
    start = window[0] if since is None else max(window[0], since)
    end = window[1] if until is None else min(window[1], until)
    return (start, max(start, end))


def report_from_jsonl(
    path: Path,
    now: float | None = None,
    *,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Report for a JSON Lines file; two passes only when dropouts must be derived."""
    scan = read_jsonl(path, types=frozenset({"dropout", "snapshot"}))
    if scan.good_lines == 0:
        raise ReportInputError(
            f"{path} holds no btmon-tui events (expected JSON Lines from `btmon-tui watch --json`)"
        )
    records = scan.records
    if not scan.has_dropouts:
        records = read_jsonl(path, types=frozenset({*RAW_TYPES, "snapshot"})).records
    elif scan.has_old_dropouts:
        # Judged again from the raw lines (build_report keeps what they do not cover).
        records = records + read_jsonl(path, types=RAW_TYPES).records
    window = _clamp(_window_of_file(path, records), since, until)
    report = build_report(within(records, since, until), window=window, now=now)
    report["warnings"] = scan.warnings
    return report


def report_from_db(
    path: Path,
    now: float | None = None,
    *,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Report for the SQLite event log."""
    from core.eventlog.store import EventStore, StoreError

    if not path.exists():
        raise ReportInputError(f"{path} does not exist: pass the event log's path (see --db)")
    store = EventStore(path, retention_days=None)
    try:
        dropouts = list(store.read(types={"dropout", "snapshot"}))
        records = dropouts
        recorded = [r for r in dropouts if r.get("type") == "dropout"]
        if not recorded:
            records = list(store.read(types={*RAW_TYPES, "snapshot"}))
        elif any(judged_before_issue_11(r) for r in recorded):
            records = dropouts + list(store.read(types=RAW_TYPES))
        window = _clamp(store.time_range(), since, until)
    except StoreError as exc:
        raise ReportInputError(str(exc)) from exc
    return build_report(within(records, since, until), window=window, now=now)


def _window_of_file(path: Path, records: list[dict[str, Any]]) -> tuple[float, float] | None:
    times = [float(r["t"]) for r in records]
    first, last = _first_last_t(path)
    if first is not None and last is not None:
        times += [first, last]
    return (min(times), max(times)) if times else None


def _first_last_t(path: Path) -> tuple[float | None, float | None]:
    """`t` of the first and last parseable lines, read from both ends of the file."""
    first = last = None
    with path.open("rb") as handle:
        for raw in handle:
            try:
                first = float(decode_line(raw.decode("utf-8", "replace"))["t"])
                break
            except EventDecodeError:
                continue
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        for raw in reversed(handle.read().splitlines()):
            try:
                last = float(decode_line(raw.decode("utf-8", "replace"))["t"])
                break
            except EventDecodeError:
                continue
    return first, last


def build_report(
    records: Iterable[Mapping[str, Any]],
    *,
    window: tuple[float, float] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The §4.3 report from records in time order."""
    detector = DropoutDetector()
    names: dict[str, str] = {}
    start = end = None
    recorded: list[Mapping[str, Any]] = []
    raw: list[Mapping[str, Any]] = []
    #: Speakers with speaker rows of their own (not only in a snapshot).
    with_rows: set[str] = set()
    for record in records:
        t = float(record["t"])
        start = t if start is None else min(start, t)
        end_t = record.get("end_t")
        last_t = max(t, float(end_t)) if isinstance(end_t, int | float) else t
        end = last_t if end is None else max(end, last_t)
        kind = record.get("type")
        if kind == "snapshot":
            for speaker in record.get("speakers") or []:
                if isinstance(speaker, dict) and "address" in speaker:
                    names.setdefault(speaker["address"], str(speaker.get("name", "")))
                    # The fleet as the recording starts: without it a speaker's first drop
                    # is missed (the detector would not know it was streaming).
                    raw.append({**speaker, "type": "speaker", "t": t, "snapshot": True})
        elif kind == "dropout":
            recorded.append(record)
        elif kind in RAW_TYPES:
            if kind == "speaker":
                names.setdefault(str(record.get("address")), str(record.get("name", "")))
                with_rows.add(str(record.get("address")))
            raw.append(record)
    if window is not None:
        # The recording's span, widened to the dropouts' ends (on records written before
        # `start_t` existed an end line's `t` is when that dropout began).
        start = window[0] if start is None else min(start, window[0])
        end = window[1] if end is None else max(end, window[1])
    rejudge = any(judged_before_issue_11(r) for r in recorded) and any(
        r.get("type") != "speaker" or not r.get("snapshot") for r in raw
    )
    if recorded and not rejudge:
        for record in recorded:
            detector.observe(record, float(record["t"]))
    else:
        # A speaker with rows of its own is judged from them; `transport` records only stand
        # in for them in logs that have none. Time order, whatever order the file had.
        for record in sorted(raw, key=lambda r: float(r["t"])):
            if record.get("type") == "transport" and record.get("address") in with_rows:
                continue
            t = float(record["t"])
            detector.tick(t)
            detector.observe(record, t)
        if end is not None:
            detector.tick(end + FLEET_STOP_SPREAD_S + 1.0)
        if recorded:
            # Dropouts recorded where no raw lines are (history seeded before a recording)
            # stand as they are; the rest were judged again above.
            first = min(float(r["t"]) for r in raw)
            last = max(float(r["t"]) for r in raw)
            for record in recorded:
                if not first <= dropout_start_t(record) <= last:
                    detector.observe(record, float(record["t"]))
    at = now if now is not None else (end if end is not None else 0.0)
    speakers = []
    for address in sorted(detector.speakers):
        history = detector.dropouts(address)
        if not history:
            continue
        period = detector.period(address)
        speakers.append(
            {
                "address": address,
                "name": names.get(address) or None,
                "dropouts": len(history),
                "kinds": _count(d.kind for d in history),
                "together": sum(1 for d in history if d.together_with),
                "period_s": round(period.period_s, 1) if period else None,
                "period_confidence": round(period.confidence, 3) if period else 0.0,
                "next_expected": round(period.next_expected(at), 1) if period else None,
                "last": history[-1].start,
            }
        )
    return {
        "speakers": speakers,
        "window": {"start": start, "end": end},
        "fleet": _fleet_view(detector),
    }


def _count(items: Iterator[str] | Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _fleet_view(detector: DropoutDetector) -> dict[str, int]:
    """Dropouts shared by several speakers (host, interference) vs one speaker alone."""
    every = [d for a in detector.speakers for d in detector.dropouts(a)]
    shared = sum(1 for d in every if d.together_with)
    return {"dropouts": len(every), "together": shared, "alone": len(every) - shared}
